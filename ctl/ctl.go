// Package ctl implements spfctl's commands: the offline ones (walk, scan)
// run in-process, the others are requests to a running spfd.
package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Env is what a command may touch: its streams and a context.
type Env struct {
	Ctx    context.Context
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

type command struct {
	name  string
	usage string
	run   func(env Env, args []string) int
}

func commands() []command {
	return []command{
		{"walk", "walk [-46v] [-s server[:port]] [-l] [domain ...]", runWalk},
	}
}

// Main runs spfctl with args (without the program name) and returns the
// exit code.
func Main(env Env, args []string) int {
	if len(args) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	cmd, err := lookup(args[0])
	if err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		usage(env.Stderr)
		return ExitUsage
	}
	return cmd.run(env, args[1:])
}

// lookup finds a command by its name or a unique prefix of it, as bgpctl
// and smtpctl do.
func lookup(word string) (command, error) {
	var matches []command
	for _, c := range commands() {
		if c.name == word {
			return c, nil
		}
		if strings.HasPrefix(c.name, word) {
			matches = append(matches, c)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return command{}, fmt.Errorf("unknown command %q", word)
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.name)
	}
	sort.Strings(names)
	return command{}, fmt.Errorf("ambiguous command %q: %s", word, strings.Join(names, ", "))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: spfctl command [argument ...]")
	for _, c := range commands() {
		fmt.Fprintf(w, "\tspfctl %s\n", c.usage)
	}
}

// newFlagSet makes a flag set that reports errors to env.Stderr and does
// not exit.
func newFlagSet(env Env, c string) *flag.FlagSet {
	fs := flag.NewFlagSet("spfctl "+c, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

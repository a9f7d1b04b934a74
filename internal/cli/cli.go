// Package cli implements spfctl: the offline commands (walk, scan) run
// in-process; the others are requests to a running spfd.
package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spfd/spfd/control"
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

// local is a command that runs without the daemon.
type local struct {
	name  string
	usage string
	run   func(env Env, args []string) int
}

func locals() []local {
	return []local{
		{"walk", "walk [-46lv] [-c concurrency] [-s server[:port]] [-t timeout] [domain ...]", runWalk},
		{"scan", "scan [-t sshd|httpd|maillog|auto] [-c spfd.conf] [-f file | file ...]", runScan},
	}
}

// Main runs spfctl with args (without the program name) and returns the
// exit code.
func Main(env Env, args []string) int {
	fs := flag.NewFlagSet("spfctl", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	socket := fs.String("s", control.DefaultSocket, "control socket `path`")
	jsonOut := fs.Bool("j", false, "JSON output")
	fs.Usage = func() { usage(env.Stderr) }
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	args = fs.Args()
	if len(args) == 0 {
		usage(env.Stderr)
		return ExitUsage
	}
	if c, err := findLocal(args[0]); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		return ExitUsage
	} else if c != nil {
		return c.run(env, args[1:])
	}

	var words []string
	verbose := false
	for _, a := range args {
		switch a {
		case "-v":
			verbose = true
		case "-j":
			*jsonOut = true
		default:
			words = append(words, a)
		}
	}
	cmd, err := control.Parse(words)
	if err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		usage(env.Stderr)
		return ExitUsage
	}
	req := control.Request{Args: cmd.Words(), Verbose: verbose, JSON: *jsonOut}
	path := *socket
	if !socketSet(fs) {
		path = defaultSocket()
	}
	if err := control.Do(env.Ctx, path, req, env.Stdout); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

func socketSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "s" {
			set = true
		}
	})
	return set
}

// systemdSocket is where the systemd unit puts the socket (its
// RuntimeDirectory); spfctl looks there when the classic path is absent.
const systemdSocket = "/run/spfd/spfd.sock"

func defaultSocket() string {
	if _, err := os.Stat(control.DefaultSocket); err != nil {
		if _, err := os.Stat(systemdSocket); err == nil {
			return systemdSocket
		}
	}
	return control.DefaultSocket
}

// findLocal resolves word against every command's first word, local and
// daemon alike, and returns the local command it names, or nil when it
// names a daemon command (or nothing: control.Parse says so).
func findLocal(word string) (*local, error) {
	cmds := locals()
	names := map[string]bool{}
	for _, c := range cmds {
		names[c.name] = true
	}
	for _, u := range control.Usage() {
		names[strings.Fields(u)[0]] = true
	}
	var matches []string
	for n := range names {
		if n == word {
			matches = []string{n}
			break
		}
		if strings.HasPrefix(n, word) {
			matches = append(matches, n)
		}
	}
	sort.Strings(matches)
	if len(matches) > 1 {
		return nil, fmt.Errorf("ambiguous command %q: %s", word, strings.Join(matches, ", "))
	}
	for i := range cmds {
		if len(matches) == 1 && cmds[i].name == matches[0] {
			return &cmds[i], nil
		}
	}
	return nil, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: spfctl [-j] [-s socket] command [argument ...]")
	for _, c := range locals() {
		fmt.Fprintf(w, "\tspfctl %s\n", c.usage)
	}
	for _, u := range control.Usage() {
		fmt.Fprintf(w, "\tspfctl %s\n", u)
	}
}

// newFlagSet makes a flag set that reports errors to env.Stderr and does
// not exit.
func newFlagSet(env Env, c string) *flag.FlagSet {
	fs := flag.NewFlagSet("spfctl "+c, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

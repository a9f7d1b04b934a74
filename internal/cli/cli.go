// Package cli implements spfctl: the offline commands (walk, scan) run
// in-process; the others are requests to a running spfd.
package cli

import (
	"context"
	"errors"
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
	// run gets the daemon's socket, for the commands that ask the
	// daemon for data and do the rest themselves.
	run func(env Env, socket string, args []string) int
}

func locals() []local {
	return []local{
		{"walk", "walk [-46lv] [-c concurrency] [-s server[:port]] [-t timeout] [domain ...]", func(env Env, _ string, args []string) int { return runWalk(env, args) }},
		{"scan", "scan [-t sshd|httpd|maillog|auto] [-c spfd.conf] [-f file | file ...]", func(env Env, _ string, args []string) int { return runScan(env, args) }},
		{"report", "report [-d days] [-o file.svg|file.html]", runReport},
	}
}

// Main runs spfctl with args (without the program name) and returns the
// exit code.
func Main(env Env, args []string) int {
	fs := flag.NewFlagSet("spfctl", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	socket := fs.String("s", control.DefaultSocket, "control socket `path`")
	jsonOut := fs.Bool("j", false, "JSON output")
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(env.Stdout, "")
			return ExitOK
		}
		fmt.Fprintln(env.Stderr, "spfctl: see spfctl help")
		return ExitUsage
	}
	args = fs.Args()
	if len(args) == 0 {
		usage(env.Stderr, "")
		return ExitUsage
	}
	if args[0] == "help" || args[0] == "--help" {
		if len(args) > 2 {
			fmt.Fprintln(env.Stderr, "spfctl: help takes one command")
			return ExitUsage
		}
		topic := ""
		if len(args) == 2 {
			topic = args[1]
		}
		if !usage(env.Stdout, topic) {
			fmt.Fprintf(env.Stderr, "spfctl: no command %q (want %s)\n", topic, strings.Join(commandNames(), ", "))
			return ExitUsage
		}
		return ExitOK
	}
	if c, err := findLocal(args[0]); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		return ExitUsage
	} else if c != nil {
		if *jsonOut {
			fmt.Fprintf(env.Stderr, "spfctl: -j: only the show commands print JSON; %s prints text\n", c.name)
			return ExitUsage
		}
		return c.run(env, socketPath(fs, *socket), args[1:])
	}
	if !knownCommand(args[0]) {
		fmt.Fprintf(env.Stderr, "spfctl: unknown command %q (want %s)\n", args[0], strings.Join(commandNames(), ", "))
		return ExitUsage
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
		fmt.Fprintf(env.Stderr, "spfctl: %v\nspfctl: see spfctl help %s\n", err, args[0])
		return ExitUsage
	}
	if *jsonOut && !strings.HasPrefix(cmd.Name, "show ") {
		fmt.Fprintf(env.Stderr, "spfctl: -j: only the show commands print JSON; %s prints text\n", cmd.Name)
		return ExitUsage
	}
	req := control.Request{Args: cmd.Words(), Verbose: verbose, JSON: *jsonOut}
	if err := control.Do(env.Ctx, socketPath(fs, *socket), req, env.Stdout); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// socketPath is -s when given, else where the daemon's socket is.
func socketPath(fs *flag.FlagSet, flagged string) string {
	if socketSet(fs) {
		return flagged
	}
	return defaultSocket()
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

// usage writes spfctl's usage, or that of the commands whose first word
// starts with topic; it reports whether any matched.
func usage(w io.Writer, topic string) bool {
	var lines []string
	for _, c := range locals() {
		lines = append(lines, c.usage)
	}
	lines = append(lines, control.Usage()...)
	if topic == "" {
		fmt.Fprintln(w, "usage: spfctl [-j] [-s socket] command [argument ...]")
		fmt.Fprintln(w, "commands may be abbreviated to any unique prefix; spfctl help command")
	}
	found := false
	for _, l := range lines {
		if topic == "" || strings.HasPrefix(strings.Fields(l)[0], topic) {
			fmt.Fprintf(w, "\tspfctl %s\n", l)
			found = true
		}
	}
	return found
}

// commandNames lists every command's first word, local and daemon ones.
func commandNames() []string {
	seen := map[string]bool{}
	for _, c := range locals() {
		seen[c.name] = true
	}
	for _, u := range control.Usage() {
		seen[strings.Fields(u)[0]] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// knownCommand reports whether word starts some command's first word.
func knownCommand(word string) bool {
	for _, n := range commandNames() {
		if strings.HasPrefix(n, word) && word != "" {
			return true
		}
	}
	return false
}

// newFlagSet makes a flag set that reports errors to env.Stderr and does
// not exit.
func newFlagSet(env Env, c string) *flag.FlagSet {
	fs := flag.NewFlagSet("spfctl "+c, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

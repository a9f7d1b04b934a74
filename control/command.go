// Package control is spfd's control channel: the command grammar shared
// by spfctl and the daemon, the wire protocol over a unix socket, the
// server with its peer-credential checks, and the client.
package control

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spfd/spfd/internal/syntax"
)

// Command is a parsed control command.
type Command struct {
	Name   string // canonical name, e.g. "show whitelist", "add", "domain add"
	List   string // "white" or "black" for add and delete
	Prefix netip.Prefix
	TTL    time.Duration
	Domain string
	// Force lets add take a prefix broader than the walk floor.
	Force bool
	// Days is how far back show report looks (0: the default, one day).
	Days    int
	Mutates bool // needs root or the daemon's own user
}

type argKind int

const (
	argList      argKind = iota // white | black
	argPrefix                   // an address or prefix
	argOptTTL                   // [ttl DURATION]
	argOptForce                 // [force]
	argOptPrefix                // [PREFIX]
	argDomain                   // a domain name
	argOptDomain                // [DOMAIN]
	argOptDays                  // [days N]
)

// MaxReportDays is as far back as the series keeps hours.
const MaxReportDays = 90

type spec struct {
	words   []string
	args    []argKind
	mutates bool
	help    string
}

// specs is the command table, as in bgpctl's parser.c: spfctl and the
// daemon both parse with it, and a test walks it.
var specs = []spec{
	{words: []string{"show", "whitelist"}, help: "show whitelist [-v]"},
	{words: []string{"show", "blacklist"}, help: "show blacklist [-v]"},
	{words: []string{"show", "domains"}, help: "show domains [-v]"},
	{words: []string{"show", "status"}, help: "show status"},
	{words: []string{"show", "stats"}, help: "show stats [-v]"},
	{words: []string{"show", "report"}, args: []argKind{argOptDays}, help: "show report [days N]"},
	{words: []string{"show", "neighbors"}, help: "show neighbors"},
	{words: []string{"show", "rib"}, help: "show rib"},
	{words: []string{"add"}, args: []argKind{argList, argPrefix, argOptTTL, argOptForce}, mutates: true, help: "add white|black PREFIX [ttl DURATION] [force]"},
	{words: []string{"delete"}, args: []argKind{argList, argPrefix}, mutates: true, help: "delete white|black PREFIX"},
	{words: []string{"expire"}, args: []argKind{argOptPrefix}, mutates: true, help: "expire [PREFIX]"},
	{words: []string{"domain", "add"}, args: []argKind{argDomain}, mutates: true, help: "domain add NAME"},
	{words: []string{"domain", "delete"}, args: []argKind{argDomain}, mutates: true, help: "domain delete NAME"},
	{words: []string{"rewalk"}, args: []argKind{argOptDomain}, mutates: true, help: "rewalk [NAME]"},
	{words: []string{"reload"}, mutates: true, help: "reload"},
	{words: []string{"log", "verbose"}, mutates: true, help: "log verbose"},
	{words: []string{"log", "brief"}, mutates: true, help: "log brief"},
}

// Usage lists the daemon commands, one a line.
func Usage() []string {
	var out []string
	for _, s := range specs {
		out = append(out, s.help)
	}
	return out
}

// IsCommand reports whether word starts a daemon command (possibly
// abbreviated).
func IsCommand(word string) bool {
	for _, s := range specs {
		if strings.HasPrefix(s.words[0], word) && word != "" {
			return true
		}
	}
	return false
}

// maxArgs bounds a command's words.
const maxArgs = 16

// Parse parses command words, each keyword abbreviated to any unique
// prefix as in bgpctl ("sh wh" is "show whitelist").
func Parse(args []string) (Command, error) {
	if len(args) == 0 {
		return Command{}, fmt.Errorf("no command")
	}
	if len(args) > maxArgs {
		return Command{}, fmt.Errorf("too many arguments")
	}
	candidates := specs
	for depth := 0; ; depth++ {
		if len(candidates) == 1 && len(candidates[0].words) == depth {
			return candidates[0].parseArgs(args[depth:])
		}
		if depth >= len(args) {
			return Command{}, fmt.Errorf("incomplete command %q (want %s)", strings.Join(args, " "), strings.Join(wordsAt(candidates, depth), ", "))
		}
		word := args[depth]
		var next []spec
		for _, s := range candidates {
			if depth < len(s.words) && s.words[depth] == word {
				next = append(next, s)
			}
		}
		if len(next) == 0 && word != "" {
			for _, s := range candidates {
				if depth < len(s.words) && strings.HasPrefix(s.words[depth], word) {
					next = append(next, s)
				}
			}
		}
		switch words := wordsAt(next, depth); {
		case len(words) == 0:
			return Command{}, fmt.Errorf("unknown command %q (want %s)", strings.Join(args[:depth+1], " "), strings.Join(wordsAt(candidates, depth), ", "))
		case len(words) > 1:
			return Command{}, fmt.Errorf("ambiguous %q: %s", word, strings.Join(words, ", "))
		}
		candidates = next
	}
}

func wordsAt(ss []spec, depth int) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if depth < len(s.words) && !seen[s.words[depth]] {
			seen[s.words[depth]] = true
			out = append(out, s.words[depth])
		}
	}
	sort.Strings(out)
	return out
}

func (s *spec) parseArgs(args []string) (Command, error) {
	c := Command{Name: strings.Join(s.words, " "), Mutates: s.mutates}
	for _, kind := range s.args {
		switch kind {
		case argList:
			if len(args) == 0 {
				return c, fmt.Errorf("%s: want white or black", c.Name)
			}
			switch {
			case args[0] != "" && strings.HasPrefix("whitelist", args[0]):
				c.List = "white"
			case args[0] != "" && strings.HasPrefix("blacklist", args[0]):
				c.List = "black"
			default:
				return c, fmt.Errorf("%s: want white or black, got %q", c.Name, args[0])
			}
			args = args[1:]
		case argPrefix, argOptPrefix:
			if len(args) == 0 {
				if kind == argOptPrefix {
					continue
				}
				return c, fmt.Errorf("%s: want an address or prefix", c.Name)
			}
			p, err := syntax.ParsePrefix(args[0])
			if err != nil {
				return c, fmt.Errorf("%s: %v", c.Name, err)
			}
			c.Prefix = p
			args = args[1:]
		case argOptTTL:
			if len(args) == 0 || args[0] == "force" {
				continue
			}
			if args[0] != "ttl" || len(args) < 2 {
				return c, fmt.Errorf("%s: want ttl DURATION, got %q", c.Name, strings.Join(args, " "))
			}
			d, err := syntax.ParseDuration(args[1])
			if err != nil {
				return c, fmt.Errorf("%s: %v", c.Name, err)
			}
			if d < time.Second {
				return c, fmt.Errorf("%s: ttl %s is no time at all (leave ttl out for an entry without expiry)", c.Name, args[1])
			}
			c.TTL = d
			args = args[2:]
		case argOptDays:
			if len(args) == 0 {
				continue
			}
			if args[0] != "days" || len(args) < 2 {
				return c, fmt.Errorf("%s: want days N, got %q", c.Name, strings.Join(args, " "))
			}
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 1 || n > MaxReportDays {
				return c, fmt.Errorf("%s: days must be from 1 to %d, got %q", c.Name, MaxReportDays, args[1])
			}
			c.Days = n
			args = args[2:]
		case argOptForce:
			if len(args) > 0 && args[0] == "force" {
				c.Force = true
				args = args[1:]
			}
		case argDomain, argOptDomain:
			if len(args) == 0 {
				if kind == argOptDomain {
					continue
				}
				return c, fmt.Errorf("%s: want a domain name", c.Name)
			}
			d := syntax.NormalizeDomain(args[0])
			if err := syntax.ValidateDomain(d); err != nil {
				return c, fmt.Errorf("%s: %v", c.Name, err)
			}
			c.Domain = d
			args = args[1:]
		}
	}
	if len(args) > 0 {
		return c, fmt.Errorf("%s: unexpected %q", c.Name, strings.Join(args, " "))
	}
	return c, nil
}

// Words renders the command in canonical form, for the wire.
func (c Command) Words() []string {
	out := strings.Fields(c.Name)
	if c.List != "" {
		out = append(out, c.List)
	}
	if c.Prefix.IsValid() {
		out = append(out, c.Prefix.String())
	}
	if c.TTL > 0 {
		out = append(out, "ttl", fmt.Sprintf("%ds", int64(c.TTL/time.Second)))
	}
	if c.Force {
		out = append(out, "force")
	}
	if c.Domain != "" {
		out = append(out, c.Domain)
	}
	if c.Days > 0 {
		out = append(out, "days", strconv.Itoa(c.Days))
	}
	return out
}

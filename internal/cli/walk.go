package cli

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spfd/spfd/internal/syntax"
	"github.com/spfd/spfd/prefixset"
	"github.com/spfd/spfd/spf"
)

// positiveDuration is a flag that takes a duration with its unit and
// refuses zero and negative ones.
type positiveDuration time.Duration

func (d *positiveDuration) String() string { return time.Duration(*d).String() }

func (d *positiveDuration) Set(v string) error {
	t, err := time.ParseDuration(v)
	switch {
	case err != nil && strings.Trim(v, "0123456789.") == "":
		return fmt.Errorf("%q needs a unit, such as %ss or %sms", v, v, v)
	case err != nil:
		return fmt.Errorf("%q is not a duration (2s, 500ms)", v)
	case t <= 0:
		return fmt.Errorf("%q: the timeout must be positive", v)
	}
	*d = positiveDuration(t)
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func runWalk(env Env, args []string) int {
	fs := newFlagSet(env, "walk")
	only4 := fs.Bool("4", false, "print IPv4 networks only")
	only6 := fs.Bool("6", false, "print IPv6 networks only")
	verbose := fs.Bool("v", false, "per-domain detail and warnings on standard error")
	lenient := fs.Bool("l", false, "take the union of several SPF records on one name")
	timeout := 2 * time.Second
	fs.Var((*positiveDuration)(&timeout), "t", "timeout of one DNS query, with a unit (`2s`, 500ms)")
	concurrency := fs.Int("c", spf.DefaultConcurrency, "domains walked at once")
	var servers stringList
	fs.Var(&servers, "s", "resolver `address[:port]` (repeatable; default: /etc/resolv.conf)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *concurrency < 1 || *concurrency > 1024 {
		fmt.Fprintln(env.Stderr, "spfctl walk: -c takes 1 to 1024")
		return ExitUsage
	}
	if *only4 && *only6 {
		fmt.Fprintln(env.Stderr, "spfctl walk: -4 and -6 exclude each other")
		return ExitUsage
	}
	var resolvers []string
	for _, s := range servers {
		addr, err := syntax.ParseServer(s)
		if err != nil {
			fmt.Fprintf(env.Stderr, "spfctl walk: %v\n", err)
			return ExitUsage
		}
		resolvers = append(resolvers, addr)
	}
	if len(resolvers) == 0 {
		var err error
		if resolvers, err = spf.SystemServers(); err != nil {
			fmt.Fprintf(env.Stderr, "spfctl walk: %v\n", err)
			return ExitFailure
		}
	}

	failed := false
	var domains []string
	if fs.NArg() > 0 {
		for _, a := range fs.Args() {
			d := syntax.NormalizeDomain(a)
			if err := syntax.ValidateDomain(d); err != nil {
				fmt.Fprintf(env.Stderr, "spfctl walk: %v\n", err)
				return ExitUsage
			}
			domains = append(domains, d)
		}
		domains = dedupe(domains)
	} else {
		// A terminal's read does not end at ^C: read aside and stop when
		// interrupted (the reader goes with the process).
		type read struct {
			domains []string
			errs    []error
		}
		got := make(chan read, 1)
		go func() {
			d, e := spf.ReadDomains(env.Stdin)
			got <- read{d, e}
		}()
		var errs []error
		select {
		case r := <-got:
			domains, errs = r.domains, r.errs
		case <-env.Ctx.Done():
			fmt.Fprintln(env.Stderr, "spfctl walk: interrupted")
			return ExitFailure
		}
		for _, err := range errs {
			fmt.Fprintf(env.Stderr, "spfctl walk: standard input: %v\n", err)
			failed = true
		}
	}

	// One run caches every answer it gets, all live until the end, so the
	// collector finds little to free: running it a quarter as often
	// saves a good share of the CPU (unless GOGC says otherwise).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	client := &spf.Client{Servers: resolvers, Timeout: timeout, Retries: 2}
	w := spf.NewWalker(client, spf.Config{Lenient: *lenient, Concurrency: *concurrency})
	progress, stop := walkProgress(env, len(domains))
	results := w.WalkAllProgress(env.Ctx, domains, progress)
	stop()
	if env.Ctx.Err() != nil {
		// Half-done walks prove nothing: no output, no per-domain noise.
		fmt.Fprintln(env.Stderr, "spfctl walk: interrupted")
		return ExitFailure
	}

	var sum walkSummary
	var all prefixset.Builder
	total := 0
	for _, r := range results {
		total += len(r.Prefixes)
	}
	all.Grow(total, 0)
	for _, r := range results {
		for _, p := range r.Prefixes {
			all.Add(p)
		}
		if r.Status != spf.Complete {
			failed = true
		}
		sum.add(r)
		reportDomain(env, r, *verbose)
	}
	out := bufio.NewWriter(env.Stdout)
	set := all.Set()
	set.Each(func(p netip.Prefix) bool {
		if (!*only4 || p.Addr().Is4()) && (!*only6 || p.Addr().Is6()) {
			fmt.Fprintln(out, p)
		}
		return true
	})
	if err := out.Flush(); err != nil {
		fmt.Fprintf(env.Stderr, "spfctl walk: %v\n", err)
		return ExitFailure
	}
	networks := set.Count()
	fmt.Fprintf(env.Stderr, "spfctl walk: %s, %d complete, %d failed, %s\n",
		syntax.Count(len(results), "domain", "domains"), sum.complete, len(results)-sum.complete, syntax.Count(networks, "network", "networks"))
	if *verbose {
		fmt.Fprintf(env.Stderr, "# %s, %s, %s sent\n", syntax.Count(len(domains), "domain", "domains"),
			syntax.Count(int(w.Questions()), "DNS question", "DNS questions"), syntax.Count(int(client.Sent()), "query", "queries"))
	}
	if failed {
		return ExitFailure
	}
	return ExitOK
}

// reportDomain tells standard error about a domain: always when it did not
// resolve completely or had prefixes refused (never a silent partial
// result), and in full with -v.
func reportDomain(env Env, r spf.Result, verbose bool) {
	if verbose {
		fmt.Fprintf(env.Stderr, "%s: %s, %s, ttl %s, %s\n", r.Domain, r.Status,
			syntax.Count(len(r.Prefixes), "network", "networks"), r.TTL, syntax.Count(r.Lookups, "lookup", "lookups"))
		for _, p := range r.Prefixes {
			fmt.Fprintf(env.Stderr, "%s:\t%s\n", r.Domain, p)
		}
	} else if r.Status != spf.Complete {
		fmt.Fprintf(env.Stderr, "%s: %s\n", r.Domain, r.Status)
	}
	for _, e := range r.Errors {
		fmt.Fprintf(env.Stderr, "%s: error: %s\n", r.Domain, e)
	}
	if verbose {
		for _, w := range r.Warnings {
			fmt.Fprintf(env.Stderr, "%s: warning: %s\n", r.Domain, w)
		}
		return
	}
	for _, p := range r.Refused {
		fmt.Fprintf(env.Stderr, "%s: warning: %s refused: broader than the safety floor\n", r.Domain, p)
	}
	if r.Status == spf.Complete && len(r.Prefixes) == 0 {
		// A record of only ptr, exists or macros: complete, yet nothing
		// to whitelist. Say why without -v.
		for _, w := range r.Warnings {
			fmt.Fprintf(env.Stderr, "%s: warning: %s\n", r.Domain, w)
		}
		fmt.Fprintf(env.Stderr, "%s: warning: no networks to whitelist\n", r.Domain)
	}
}

type walkSummary struct{ complete int }

func (s *walkSummary) add(r spf.Result) {
	if r.Status == spf.Complete {
		s.complete++
	}
}

// walkProgress shows "done/total" on standard error while domains are
// walked, when standard error is a terminal; stop clears it.
func walkProgress(env Env, total int) (progress func(int), stop func()) {
	f, ok := env.Stderr.(*os.File)
	if !ok || total < 2 {
		return nil, func() {}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 || fi.Name() == os.DevNull[len("/dev/"):] {
		return nil, func() {}
	}
	var done atomic.Int64
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-t.C:
				fmt.Fprintf(f, "\rwalking: %d/%d domains", done.Load(), total)
			}
		}
	}()
	return func(n int) { done.Store(int64(n)) }, func() { close(quit); <-finished }
}

func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

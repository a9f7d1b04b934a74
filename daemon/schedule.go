package daemon

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"strings"
	"time"

	"github.com/go-kit/log/level"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/spf"
)

// Retry backoff after a temporary failure: 1m, 2m, 4m ... up to the
// minimum walk interval.
const firstRetry = time.Minute

// maxBatch bounds the domains one scheduler pass walks.
const maxBatch = 256

// scheduleLoop walks domains when they are due.
func (d *Daemon) scheduleLoop(ctx context.Context) error {
	timer := d.clock.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C():
		case <-d.wake:
		}
		due, next := d.dueDomains()
		if len(due) > 0 {
			d.walkDomains(ctx, due)
			due, next = d.dueDomains()
		}
		wait := time.Minute
		if len(due) > 0 {
			wait = 0
		} else if !next.IsZero() {
			wait = min(wait, max(0, next.Sub(d.now())))
		}
		if !timer.Stop() {
			select {
			case <-timer.C():
			default:
			}
		}
		timer.Reset(wait)
	}
}

// dueDomains returns the domains due now (oldest first, at most a batch)
// and the time the next one falls due.
func (d *Daemon) dueDomains() ([]string, time.Time) {
	return d.state.Due(d.now(), maxBatch)
}

// walkDomains walks names now and applies the results.
func (d *Daemon) walkDomains(ctx context.Context, names []string) []spf.Result {
	d.mu.Lock()
	walker, client := d.walker, d.dns
	d.mu.Unlock()
	var before []spf.ServerStats
	if client != nil {
		before = client.Stats()
	}
	results := walker.WalkAll(ctx, names)
	if ctx.Err() != nil {
		return results // shutting down: do not record half-done walks
	}
	pass := summarisePass(d.now(), results)
	if client != nil {
		for i, st := range client.Stats() {
			if i < len(before) {
				st = st.Sub(before[i])
			}
			pass.Servers = append(pass.Servers, st)
		}
	}
	d.mu.Lock()
	policy := d.cfg.Walk
	d.mu.Unlock()
	for _, r := range results {
		d.applyResult(r, policy)
	}
	d.mu.Lock()
	d.lastPass = pass
	d.mu.Unlock()
	d.logWalkPass(pass)
	for result, n := range map[string]int{"complete": pass.Complete, "temporary-failure": pass.TempFail, "permanent-failure": pass.PermFail, "refused": pass.Refused} {
		d.metrics.walks.WithLabelValues(result).Add(float64(n))
	}
	d.signal(d.dirty)
	d.signal(d.save)
	return results
}

// walkPass sums up one pass of walks for the log and show status.
type walkPass struct {
	At        time.Time         `json:"at"`
	Domains   int               `json:"domains"`
	Complete  int               `json:"complete"`
	TempFail  int               `json:"temporary_failure"`
	PermFail  int               `json:"permanent_failure"`
	Refused   int               `json:"refused"`
	Networks  int               `json:"networks"`
	Problems  []walkProblem     `json:"problems,omitempty"` // the first few
	Servers   []spf.ServerStats `json:"resolvers,omitempty"`
	AllFailed bool              `json:"all_failed"`
}

type walkProblem struct {
	Domain string `json:"domain"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// maxProblems bounds the problems a pass keeps by name.
const maxProblems = 5

func summarisePass(now time.Time, results []spf.Result) walkPass {
	p := walkPass{At: now, Domains: len(results)}
	for _, r := range results {
		status := r.Status.String()
		switch {
		case r.Refusal != "":
			p.Refused++
			status = statusRefused
		case r.Status == spf.Complete:
			p.Complete++
		case r.Status == spf.TempFail:
			p.TempFail++
		default:
			p.PermFail++
		}
		p.Networks += len(r.Prefixes)
		if r.Status != spf.Complete && len(p.Problems) < maxProblems {
			e := ""
			if len(r.Errors) > 0 {
				e = r.Errors[0]
			}
			p.Problems = append(p.Problems, walkProblem{Domain: r.Domain, Status: status, Error: e})
		}
	}
	p.AllFailed = p.Domains > 0 && p.Complete == 0
	return p
}

// logWalkPass says in one line what a pass of walks came to, so that an
// admin sees the whitelist being built, or why it stays empty, without
// one line per domain: a dead or lying resolver fails every domain.
func (d *Daemon) logWalkPass(p walkPass) {
	kv := []any{"msg", "walked domains", "domains", p.Domains, "complete", p.Complete,
		"temporary-failure", p.TempFail, "permanent-failure", p.PermFail, "refused", p.Refused, "networks", p.Networks}
	if len(p.Problems) > 0 {
		kv = append(kv, "first-problem", p.Problems[0].Error)
	}
	if !p.AllFailed || p.Domains < 2 {
		d.info(kv...)
		return
	}
	var answered []string
	for _, s := range p.Servers {
		answered = append(answered, s.String())
	}
	kv[1] = "every domain failed: DNS looks broken"
	kv = append(kv, "resolvers", strings.Join(answered, "; "))
	level.Warn(d.logger).Log(kv...)
}

// statusRefused is the status of a domain whose networks were refused
// as a whole (too broad); its last good set stays.
const statusRefused = "refused"

// applyResult records one walk. The rules: a temporary failure keeps the
// last good set and retries with backoff; a definitive answer replaces it,
// except that a domain whose record vanished keeps its networks for the
// grace period. A domain deleted while it was walked is left alone.
func (d *Daemon) applyResult(r spf.Result, w config.Walk) {
	d.state.UpdateDomain(r.Domain, func(ds *state.DomainState, setNetworks func([]netip.Prefix) (int, int)) {
		d.applyWalkPolicy(ds, r, w, setNetworks)
	})
}

func (d *Daemon) applyWalkPolicy(ds *state.DomainState, r spf.Result, w config.Walk, setNetworks func([]netip.Prefix) (int, int)) {
	now := d.now()
	ds.LastWalk = now
	ds.Status = r.Status.String()
	ds.Errors = r.Errors
	ds.Warnings = r.Warnings
	for _, e := range r.Errors {
		d.debug("msg", "walk problem", "domain", r.Domain, "status", r.Status, "err", e)
	}
	for _, wn := range r.Warnings {
		d.debug("msg", "walk warning", "domain", r.Domain, "warning", wn)
	}
	switch {
	case r.Refusal != "":
		// Someone's record asks for too much: never widen the whitelist
		// with it, and do not shrink it either, as an attacker who
		// captured the domain could otherwise empty it at will.
		ds.Status = statusRefused
		ds.Failures = 0
		ds.NextWalk = now.Add(jitter(w.MinInterval))
		level.Warn(d.logger).Log("msg", "domain refused, keeping its last good set", "domain", r.Domain,
			"reason", r.Refusal, "networks", len(ds.Prefixes))
		return
	case r.Status == spf.TempFail:
		ds.Failures++
		backoff := firstRetry << min(ds.Failures-1, 16)
		ds.NextWalk = now.Add(jitter(min(backoff, w.MinInterval)))
		d.debug("msg", "walk failed temporarily, keeping the last good set", "domain", r.Domain,
			"networks", len(ds.Prefixes), "retry", ds.NextWalk.Sub(now).Round(time.Second))
		return
	case len(r.Prefixes) == 0 && len(ds.Prefixes) > 0 && r.Status == spf.PermFail:
		ds.Failures = 0
		if ds.LostSince.IsZero() {
			ds.LostSince = now
		}
		if now.Sub(ds.LostSince) < w.Grace {
			ds.NextWalk = now.Add(jitter(w.MinInterval))
			// debug: a lying resolver would say this of every domain;
			// the pass's summary line and show domains tell it.
			d.debug("msg", "domain lost its SPF networks, keeping them for the grace period", "domain", r.Domain,
				"until", ds.LostSince.Add(w.Grace).UTC().Format(time.RFC3339))
			return
		}
		d.info("msg", "grace period over, dropping networks", "domain", r.Domain)
	}
	ds.Failures = 0
	ds.LostSince = time.Time{}
	ds.Prefixes = r.Prefixes
	ds.TTL = r.TTL
	ds.LastGood = now
	interval := min(max(r.TTL, w.MinInterval), w.MaxInterval)
	ds.NextWalk = now.Add(jitter(interval))
	added, removed := setNetworks(r.Prefixes)
	if added+removed > 0 {
		d.info("msg", "whitelist updated", "domain", r.Domain, "added", added, "removed", removed, "networks", len(r.Prefixes))
	}
}

// jitter spreads walks by up to a tenth of the interval, earlier, so that
// domains added together do not stay in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

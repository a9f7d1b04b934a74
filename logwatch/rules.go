package logwatch

import (
	"container/list"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Tracker counts strikes per address within a rolling window. Memory is
// bounded: each address keeps at most threshold timestamps, and at most
// MaxTracked addresses are tracked, the least recently struck forgotten
// first, so a flood of forged addresses cannot exhaust memory.
type Tracker struct {
	threshold int
	window    time.Duration
	max       int
	lru       *list.List // of *track, most recent first
	byAddr    map[netip.Addr]*list.Element
}

type track struct {
	addr  netip.Addr
	times []time.Time // ring of the last threshold strikes
	next  int
}

// DefaultMaxTracked bounds the addresses one rule tracks.
const DefaultMaxTracked = 100_000

// NewTracker returns a tracker that fires when threshold strikes fall
// within window.
func NewTracker(threshold int, window time.Duration, maxTracked int) *Tracker {
	if threshold < 1 {
		threshold = 1
	}
	if maxTracked < 1 {
		maxTracked = DefaultMaxTracked
	}
	return &Tracker{threshold: threshold, window: window, max: maxTracked, lru: list.New(), byAddr: make(map[netip.Addr]*list.Element)}
}

// Strike records n strikes for a at t and reports the strikes within the
// window and whether they reach the threshold.
func (tr *Tracker) Strike(a netip.Addr, t time.Time, n int) (count int, fire bool) {
	el, ok := tr.byAddr[a]
	if ok {
		tr.lru.MoveToFront(el)
	} else {
		el = tr.lru.PushFront(&track{addr: a, times: make([]time.Time, 0, min(tr.threshold, 16))})
		tr.byAddr[a] = el
		for tr.lru.Len() > tr.max {
			old := tr.lru.Back()
			tr.lru.Remove(old)
			delete(tr.byAddr, old.Value.(*track).addr)
		}
	}
	tk := el.Value.(*track)
	for range n {
		if len(tk.times) < tr.threshold {
			tk.times = append(tk.times, t)
		} else {
			tk.times[tk.next] = t
			tk.next = (tk.next + 1) % tr.threshold
		}
	}
	since := t.Add(-tr.window)
	for _, x := range tk.times {
		if !x.Before(since) {
			count++
		}
	}
	return count, count >= tr.threshold
}

// Len reports the addresses tracked.
func (tr *Tracker) Len() int { return tr.lru.Len() }

// SSHRules turns sshd events into strikes: one per failed authentication,
// at least one per connection, so the three or four lines sshd writes
// about one guessed password count once. A failure for a user outside
// AllowUsers counts at once.
type SSHRules struct {
	AllowUsers map[string]bool // empty: everyone may try
	conns      *list.List
	byConn     map[connKey]*list.Element
}

type connKey struct {
	addr netip.Addr
	port int
}

type connState struct {
	key     connKey
	counted int
	failed  int
}

// maxConns bounds the connections SSHRules remembers.
const maxConns = 50_000

// NewSSHRules returns sshd rules; allowUsers may be empty.
func NewSSHRules(allowUsers []string) *SSHRules {
	r := &SSHRules{conns: list.New(), byConn: make(map[connKey]*list.Element)}
	if len(allowUsers) > 0 {
		r.AllowUsers = make(map[string]bool)
		for _, u := range allowUsers {
			r.AllowUsers[u] = true
		}
	}
	return r
}

// Strikes says how many strikes e is worth, and whether it is so bad it
// fires at once (a user outside AllowUsers, when that is configured).
func (r *SSHRules) Strikes(e Event) (n int, immediate bool, reason string) {
	switch e.Kind {
	case SSHInvalidUser, SSHFailed, SSHMaxAuth, SSHPreauth:
	default:
		return 0, false, ""
	}
	// An existing user's client offering keys it has: normal.
	if e.Kind == SSHFailed && e.Method == "publickey" && !e.Invalid {
		if r.AllowUsers == nil || r.AllowUsers[e.User] {
			return 0, false, ""
		}
	}
	reason = string(e.Kind)
	if e.User == "root" {
		reason += " (root)"
	}
	if r.AllowUsers != nil && !r.AllowUsers[e.User] {
		immediate = true
		reason += " (user not allowed)"
	}
	if e.Port == 0 {
		return 1, immediate, reason // no port: every line is an attempt
	}
	key := connKey{e.Addr, e.Port}
	el, ok := r.byConn[key]
	if !ok {
		el = r.conns.PushFront(&connState{key: key})
		r.byConn[key] = el
		for r.conns.Len() > maxConns {
			old := r.conns.Back()
			r.conns.Remove(old)
			delete(r.byConn, old.Value.(*connState).key)
		}
	} else {
		r.conns.MoveToFront(el)
	}
	c := el.Value.(*connState)
	if e.Kind == SSHFailed {
		c.failed++
	}
	want := max(1, c.failed)
	n = want - c.counted
	c.counted = want
	return n, immediate, reason
}

// ProbeMatcher matches request paths against narrow-rule patterns: a
// case-insensitive substring of the path as sent or percent-decoded, so
// /%77p-admin is /wp-admin.
type ProbeMatcher []string

// Match returns the pattern that matches path, or "".
func (m ProbeMatcher) Match(path string) string {
	if path == "" || len(m) == 0 {
		return ""
	}
	cands := []string{strings.ToLower(path)}
	if dec, err := url.PathUnescape(path); err == nil && dec != path {
		cands = append(cands, strings.ToLower(dec))
	}
	for _, p := range m {
		lp := strings.ToLower(p)
		for _, c := range cands {
			if strings.Contains(c, lp) {
				return p
			}
		}
	}
	return ""
}

// ClientBehind returns the client address of an httpd event: the logged
// client, or when that is a trusted proxy, the rightmost address of
// X-Forwarded-For that is not a trusted proxy.
func ClientBehind(e Event, trusted func(netip.Addr) bool) (netip.Addr, bool) {
	if trusted == nil || !trusted(e.Addr) {
		return e.Addr, true
	}
	if e.Forwarded == "" || e.Forwarded == "-" {
		return netip.Addr{}, false
	}
	parts := strings.Split(e.Forwarded, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		a, ok := parseAddr(strings.TrimSpace(parts[i]))
		if !ok {
			return netip.Addr{}, false // a garbled chain: trust none of it
		}
		if !trusted(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

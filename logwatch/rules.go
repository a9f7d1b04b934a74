package logwatch

import (
	"encoding/binary"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Tracker counts strikes per address within a rolling window. Memory is
// bounded: each address keeps at most threshold timestamps, and at most
// maxTracked addresses are tracked, the oldest forgotten first, so a
// flood of forged addresses cannot exhaust memory.
type Tracker struct {
	threshold int
	window    int64 // nanoseconds
	// IPv4 addresses, most of an attacked log's, are looked up by their
	// 32 bits: a map of uint32 keys hashes and compares in a fraction of
	// the time of 16-byte keys.
	tracks4 map[uint32]*track
	tracks6 map[addrKey]*track
	fifo    *fifo[addrKey]
}

// addrKey is an address as a map key: 16 bytes, no pointer, cheaper to
// hash and compare than netip.Addr.
type addrKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) addrKey {
	b := a.As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

type track struct {
	times []int64 // ring of the last threshold strikes, Unix nanoseconds
	next  int
	// Kept inline, so one address's state is one allocation and a strike
	// touches two cache lines, not four: small backs times when the
	// threshold fits, conns are sshd's latest connections, oldest first.
	small  [4]int64
	conns  [maxConnsPerAddr]connState
	nconns int
}

// connState is what one sshd connection has been charged: at least one
// strike, and one more for every failed authentication after the first.
type connState struct {
	key     uint32 // the sshd process's pid, or the client's port
	counted uint16
	failed  uint16
}

// maxConnsPerAddr bounds the connections remembered per address. An
// address with more at once has its oldest forgotten, and its later lines
// count afresh: more strikes for a parallel brute force, never fewer.
const maxConnsPerAddr = 8

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
	return &Tracker{threshold: threshold, window: int64(window), tracks4: make(map[uint32]*track), tracks6: make(map[addrKey]*track),
		fifo: newFIFO[addrKey](maxTracked)}
}

// Strike records n strikes for a at t and reports the strikes within the
// window and whether they reach the threshold.
func (tr *Tracker) Strike(a netip.Addr, t time.Time, n int) (count int, fire bool) {
	return tr.strike(tr.lookup(a), t.UnixNano(), n)
}

// Attempt records one sshd event of the connection from a's port at t:
// one strike per failed authentication and at least one per connection,
// so the three or four lines sshd writes about one guessed password count
// once. It reports the strikes the event added (0: the same attempt,
// already counted), those within the window, and whether they reach the
// threshold. Port 0 (an old sshd that does not log it) makes every event
// one strike. Folding connections here, on the address's own entry, costs
// one map lookup per event instead of two.
func (tr *Tracker) Attempt(a netip.Addr, port int, failed bool, t time.Time) (added, count int, fire bool) {
	return tr.AttemptOn(a, port, failed, t)
}

// AttemptOn is Attempt with the connection named by conn: the sshd
// process's pid where the log gives it (every line of one connection
// carries it, PAM's too), else the client's port.
func (tr *Tracker) AttemptOn(a netip.Addr, conn int, failed bool, t time.Time) (added, count int, fire bool) {
	tk := tr.lookup(a)
	added = 1
	if conn > 0 {
		c := tk.conn(uint32(conn))
		if failed {
			c.failed = min(c.failed+1, 0xfffe)
		}
		want := max(1, c.failed)
		added = int(want - c.counted)
		c.counted = want
	}
	count, fire = tr.strike(tk, t.UnixNano(), added)
	return added, count, fire
}

// conn returns the state of the connection from port, remembering it as
// the newest; the oldest is forgotten past maxConnsPerAddr.
func (tk *track) conn(key uint32) *connState {
	for i := tk.nconns - 1; i >= 0; i-- {
		if tk.conns[i].key == key {
			return &tk.conns[i]
		}
	}
	if tk.nconns == maxConnsPerAddr {
		copy(tk.conns[:], tk.conns[1:])
		tk.nconns--
	}
	tk.conns[tk.nconns] = connState{key: key}
	tk.nconns++
	return &tk.conns[tk.nconns-1]
}

func (tr *Tracker) lookup(a netip.Addr) *track {
	a = a.Unmap() // one track for an address in either form
	var tk *track
	if a.Is4() {
		b := a.As4()
		tk = tr.tracks4[binary.BigEndian.Uint32(b[:])]
	} else {
		tk = tr.tracks6[keyOf(a)]
	}
	if tk != nil {
		return tk
	}
	tk = &track{}
	if tr.threshold <= len(tk.small) {
		tk.times = tk.small[:0:tr.threshold]
	} else {
		tk.times = make([]int64, 0, min(tr.threshold, 8))
	}
	k := keyOf(a)
	tr.put(k, tk)
	if old, evicted := tr.fifo.push(k); evicted {
		tr.put(old, nil)
	}
	return tk
}

// put sets (or, with nil, deletes) the track of the address k, in the
// map of its family: IPv4 keys are IPv4-mapped (keyOf).
func (tr *Tracker) put(k addrKey, tk *track) {
	if k.hi == 0 && k.lo>>32 == 0xffff {
		if tk == nil {
			delete(tr.tracks4, uint32(k.lo))
		} else {
			tr.tracks4[uint32(k.lo)] = tk
		}
		return
	}
	if tk == nil {
		delete(tr.tracks6, k)
	} else {
		tr.tracks6[k] = tk
	}
}

func (tr *Tracker) strike(tk *track, now int64, n int) (count int, fire bool) {
	for range n {
		if len(tk.times) < tr.threshold {
			tk.times = append(tk.times, now)
		} else {
			tk.times[tk.next] = now
			tk.next = (tk.next + 1) % tr.threshold
		}
	}
	since := now - tr.window
	for _, x := range tk.times {
		if x >= since {
			count++
		}
	}
	return count, count >= tr.threshold
}

// Len reports the addresses tracked.
func (tr *Tracker) Len() int { return len(tr.tracks4) + len(tr.tracks6) }

// fifo remembers up to max keys in insertion order; pushing past max
// returns the oldest to forget. A ring that grows to max and then wraps:
// no allocation per key, and no memory for keys never seen.
type fifo[K comparable] struct {
	ring []K
	max  int
	head int
}

func newFIFO[K comparable](max int) *fifo[K] { return &fifo[K]{max: max} }

func (f *fifo[K]) push(k K) (old K, evicted bool) {
	if len(f.ring) < f.max {
		f.ring = append(f.ring, k)
		return old, false
	}
	old = f.ring[f.head]
	f.ring[f.head] = k
	f.head = (f.head + 1) % f.max
	return old, true
}

// SSHRules classifies sshd events: normal use, or an attempt worth
// strikes (counted per connection by Tracker.Attempt). A failure for a
// user outside AllowUsers counts at once.
type SSHRules struct {
	AllowUsers map[string]bool // empty: everyone may try
}

// sshReasons[kind][root][notAllowed][variant] are built once: no string
// is made per event. Variants: plain, same attempt, exempt.
var sshReasons = func() (t [4][2][2][3]string) {
	for k, kind := range []Kind{SSHInvalidUser, SSHFailed, SSHMaxAuth, SSHPreauth} {
		for root := range 2 {
			for na := range 2 {
				r := kind.String()
				if root == 1 {
					r += " (root)"
				}
				if na == 1 {
					r += " (user not allowed)"
				}
				t[k][root][na] = [3]string{r, r + " (same attempt)", r + " (exempt)"}
			}
		}
	}
	return t
}()

func sshKindIndex(k Kind) int { return int(k - SSHInvalidUser) }

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NewSSHRules returns sshd rules; allowUsers may be empty.
func NewSSHRules(allowUsers []string) *SSHRules {
	r := &SSHRules{}
	if len(allowUsers) > 0 {
		r.AllowUsers = make(map[string]bool)
		for _, u := range allowUsers {
			r.AllowUsers[u] = true
		}
	}
	return r
}

// reasonVariant returns the same-attempt (1) or exempt (2) form of an
// sshd reason without building a string.
func reasonVariant(e *Event, allow map[string]bool, v int) string {
	na := allow != nil && !allow[e.User]
	return sshReasons[sshKindIndex(e.Kind)][b2i(e.User == "root")][b2i(na)][v]
}

// Classify says whether e is an attempt worth strikes (a non-empty
// reason), and whether it is so bad it fires at once (a user outside
// AllowUsers, when that is configured).
func (r *SSHRules) Classify(e *Event) (immediate bool, reason string) {
	switch e.Kind {
	case SSHInvalidUser, SSHFailed, SSHMaxAuth, SSHPreauth:
	default:
		return false, ""
	}
	// An existing user's connection closed before it authenticated: its
	// failed attempts have lines of their own, so this adds nothing (a
	// client that only offered keys gets no strike).
	if e.Kind == SSHPreauth && !e.Invalid {
		return false, ""
	}
	// An existing user's client offering keys it has: normal.
	if e.Kind == SSHFailed && e.Method == "publickey" && !e.Invalid {
		if r.AllowUsers == nil || r.AllowUsers[e.User] {
			return false, ""
		}
	}
	immediate = r.AllowUsers != nil && !r.AllowUsers[e.User]
	return immediate, sshReasons[sshKindIndex(e.Kind)][b2i(e.User == "root")][b2i(immediate)][0]
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
func ClientBehind(e *Event, trusted func(netip.Addr) bool) (netip.Addr, bool) {
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

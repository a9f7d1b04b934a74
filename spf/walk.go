package spf

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/spfd/spfd/internal/syntax"
	"github.com/spfd/spfd/prefixset"
)

// Status summarises how a domain's walk went.
type Status int

// The order matters: a walk's status is the worst it met.
const (
	// Complete: every part of the tree resolved.
	Complete Status = iota
	// PermFail: a definitive problem (no SPF record, NXDOMAIN, syntax
	// error, loop); the networks found elsewhere in the tree stand.
	PermFail
	// TempFail: a timeout, SERVFAIL or REFUSED somewhere in the tree; the
	// result is incomplete and must not replace a last good one.
	TempFail
)

func (s Status) String() string {
	switch s {
	case Complete:
		return "complete"
	case PermFail:
		return "permanent-failure"
	case TempFail:
		return "temporary-failure"
	}
	return fmt.Sprintf("status(%d)", int(s))
}

// Config holds the walker's limits. Zero values take the defaults.
type Config struct {
	// MinIPv4Len and MinIPv6Len are the safety floor: broader prefixes are
	// refused (defaults /12 and /24).
	MinIPv4Len, MinIPv6Len int
	// MaxQueries caps the lookups of one domain's walk, cache hits
	// included (default 250).
	MaxQueries int
	// MaxDepth caps include/redirect nesting (default 20).
	MaxDepth int
	// Concurrency bounds the domains walked at once (default 32).
	Concurrency int
	// MaxLookups caps the DNS-querying terms (include, a, mx, ptr,
	// exists, redirect) of one apex evaluation, nested ones included
	// (default RFC 7208's 10). Over it the walk is a permanent failure and
	// yields nothing, as a receiver's permerror does.
	MaxLookups int
	// MaxVoids caps lookups that find nothing (default RFC 7208's 2).
	MaxVoids int
	// MaxAddresses4 and MaxAddresses6 bound what one domain contributes
	// as a whole: the union of its networks may cover at most that many
	// IPv4 addresses, and at most as many IPv6 addresses as one prefix of
	// length MaxCover6Len. Over either the domain is refused whole: a
	// per-term floor alone lets 4 096 /12 terms cover 0.0.0.0/0.
	MaxAddresses4 uint64
	MaxCover6Len  int
	// Lenient unions two or more SPF records on one name instead of
	// reporting an error.
	Lenient bool
	// Now is the clock for cache expiry (default time.Now).
	Now func() time.Time
}

// Defaults for Config.
const (
	DefaultMinIPv4Len  = 12
	DefaultMinIPv6Len  = 24
	DefaultMaxQueries  = 250
	DefaultMaxDepth    = 20
	DefaultConcurrency = 32
	// DefaultMaxLookups and DefaultMaxVoids are RFC 7208's limits (section
	// 4.6.4), which every receiver enforces.
	DefaultMaxLookups = 10
	DefaultMaxVoids   = 2
	// DefaultMaxAddresses4 is one /8's worth: 32 times what the largest
	// provider in testdata/spf-realworld covers (outlook.com, about a
	// /13), and a sixteenth of a /4.
	DefaultMaxAddresses4 = 1 << 24
	// DefaultMaxCover6Len: at most a /20's worth of IPv6, 8 000 times
	// google.com's whole IPv6 cover (about a /33).
	DefaultMaxCover6Len = 20
	// maxMX is RFC 7208's limit of MX names per mx mechanism.
	maxMX = 10
)

func (c Config) withDefaults() Config {
	if c.MinIPv4Len == 0 {
		c.MinIPv4Len = DefaultMinIPv4Len
	}
	if c.MinIPv6Len == 0 {
		c.MinIPv6Len = DefaultMinIPv6Len
	}
	if c.MaxQueries <= 0 {
		c.MaxQueries = DefaultMaxQueries
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.MaxLookups <= 0 {
		c.MaxLookups = DefaultMaxLookups
	}
	if c.MaxVoids <= 0 {
		c.MaxVoids = DefaultMaxVoids
	}
	if c.MaxAddresses4 == 0 {
		c.MaxAddresses4 = DefaultMaxAddresses4
	}
	if c.MaxCover6Len <= 0 {
		c.MaxCover6Len = DefaultMaxCover6Len
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Result is what one domain's walk found.
type Result struct {
	Domain string
	Status Status
	// Prefixes is the minimal cover of the pass networks, sorted.
	Prefixes []netip.Prefix
	// Refused are prefixes broader than the safety floor.
	Refused []netip.Prefix
	// Errors give the reasons for a status other than Complete.
	Errors []string
	// Warnings are things a person should know but that do not change
	// the status (skipped ptr/exists/macros, RFC limits exceeded).
	Warnings []string
	// TTL is the lowest TTL of every record the walk used.
	TTL time.Duration
	// Lookups is the RFC 7208 count of DNS mechanisms and modifiers.
	Lookups int
	// Voids counts the lookups that found nothing.
	Voids int
	// Refusal is set when the domain was refused as a whole (its
	// networks cover more than the configured limit): Status is then
	// PermFail and Prefixes is empty. A daemon keeps the last good set.
	Refusal string
	// OverLimit is set when an RFC 7208 processing limit was exceeded:
	// Status is PermFail and Prefixes is empty, as a receiver's permerror
	// lets nothing pass.
	OverLimit bool
}

// Walker walks SPF trees. It is safe for concurrent use; all walks share
// one cache.
type Walker struct {
	cfg   Config
	cache *cache

	// subtrees memoises the walks of include targets: provider records
	// are shared by thousands of domains. (Parsing is not memoised: a
	// record costs a few microseconds to parse, less than hashing its
	// text into a map and back.)
	mu       sync.Mutex
	subtrees map[string]*subtree
}

// NewWalker returns a walker that asks DNS through ex.
func NewWalker(ex Exchanger, cfg Config) *Walker {
	cfg = cfg.withDefaults()
	return &Walker{cfg: cfg, cache: newCache(ex, cfg.Now), subtrees: make(map[string]*subtree)}
}

// Questions reports how many distinct questions the walker has put to DNS.
func (w *Walker) Questions() int64 { return w.cache.asked.Load() }

// WalkAll walks domains with bounded concurrency; results come in the order
// of domains. A fixed set of workers takes the domains in turn: a
// goroutine per domain would grow a fresh stack for every walk, which
// cost a fifth of the CPU.
func (w *Walker) WalkAll(ctx context.Context, domains []string) []Result {
	return w.WalkAllProgress(ctx, domains, nil)
}

// WalkAllProgress is WalkAll that calls progress (when not nil) with the
// number of domains done after each one, from the walking goroutines.
func (w *Walker) WalkAllProgress(ctx context.Context, domains []string, progress func(done int)) []Result {
	results := make([]Result, len(domains))
	var done atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(w.cfg.Concurrency, len(domains)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(domains) {
					return
				}
				if err := ctx.Err(); err != nil {
					results[i] = Result{Domain: syntax.NormalizeDomain(domains[i]), Status: TempFail, Errors: []string{err.Error()}}
					continue
				}
				results[i] = w.Walk(ctx, domains[i])
				if n := done.Add(1); progress != nil {
					progress(int(n))
				}
			}
		}()
	}
	wg.Wait()
	return results
}

// Walk resolves one domain's SPF tree.
func (w *Walker) Walk(ctx context.Context, domain string) Result {
	st := newWalk(ctx, w)
	st.res.Domain = syntax.NormalizeDomain(domain)
	if err := syntax.ValidateDomain(st.res.Domain); err != nil {
		st.fail(PermFail, "%s", err)
	} else {
		// The apex: normalised and valid, on no stack, visited first.
		st.visited = append(st.visited, st.res.Domain)
		st.evalRecord(st.res.Domain, 0)
	}
	st.res.Voids = st.voids
	cfg := w.cfg
	if st.voids > cfg.MaxVoids {
		st.overLimit("%d void lookups, more than %d (RFC 7208 section 4.6.4)", st.voids, cfg.MaxVoids)
	}
	if st.res.Lookups > cfg.MaxLookups {
		st.overLimit("%d DNS-querying terms, more than %d (RFC 7208 section 4.6.4; walk max-lookups)", st.res.Lookups, cfg.MaxLookups)
	}
	if st.mxOver {
		st.res.OverLimit = true
	}
	if st.minTTL != ^uint32(0) {
		st.res.TTL = time.Duration(st.minTTL) * time.Second
	}
	if st.res.OverLimit {
		return st.res
	}
	set := st.set()
	v4, v6 := set.Addresses()
	switch {
	case v4.Cmp(prefixset.Count{Lo: cfg.MaxAddresses4}) > 0:
		st.refuse("its networks cover %s IPv4 addresses, more than %d (walk max-addresses)", v4, cfg.MaxAddresses4)
	case v6.Cmp(prefixset.PrefixCount(128-cfg.MaxCover6Len)) > 0:
		st.refuse("its networks cover %s IPv6 addresses, more than a /%d (walk max-addresses)", v6, cfg.MaxCover6Len)
	default:
		st.res.Prefixes = set.Prefixes()
	}
	return st.res
}

// overLimit makes the walk a permanent failure that yields nothing.
func (st *walk) overLimit(format string, args ...any) {
	st.fail(PermFail, format, args...)
	st.res.OverLimit = true
}

// refuse rejects the domain as a whole: nothing it found is used.
func (st *walk) refuse(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	st.fail(PermFail, "refused: %s", msg)
	st.res.Refusal = msg
}

// walk is the state of one domain's walk. Each domain gets its own, so
// nothing seen in one domain's tree hides anything in another's.
type walk struct {
	w     *Walker
	ctx   context.Context
	res   Result
	added []netip.Prefix // its own networks
	subs  []*subtree     // the include and redirect targets merged
	// Room for the usual few of each, inside the walk's own allocation.
	addedBuf   [4]netip.Prefix
	subsBuf    [4]*subtree
	visitedBuf [8]string
	stackBuf   [8]string
	// Include/redirect targets already resolved: a walk visits a handful
	// (at most MaxQueries), so a slice beats a map made for every walk.
	visited []string
	stack   []string // the include path, for loop detection
	queries int
	voids   int
	minTTL  uint32
	aborted bool
	mxOver  bool // an mx term named more than 10 hosts

	// A subtree walk (an include or redirect target, memoised for other
	// domains) starts at stack index root and depth rootDepth.
	root, rootDepth int
	deepest         int  // the deepest nesting reached
	loopMin         int  // the lowest stack index a loop went back to
	depthLimited    bool // the nesting cap cut this walk short
}

// newWalk returns a walk whose slices start in its own buffers.
func newWalk(ctx context.Context, w *Walker) *walk {
	st := &walk{w: w, ctx: ctx, minTTL: ^uint32(0), loopMin: math.MaxInt}
	st.added, st.subs = st.addedBuf[:0], st.subsBuf[:0]
	st.visited, st.stack = st.visitedBuf[:0], st.stackBuf[:0]
	return st
}

func (st *walk) fail(s Status, format string, args ...any) {
	if s > st.res.Status {
		st.res.Status = s
	}
	st.res.Errors = append(st.res.Errors, fmt.Sprintf(format, args...))
}

func (st *walk) warn(format string, args ...any) {
	st.res.Warnings = append(st.res.Warnings, fmt.Sprintf(format, args...))
}

// lookup runs one query under the per-domain cap.
func (st *walk) lookup(name string, qtype uint16) (answer, bool) {
	if st.aborted {
		return answer{}, false
	}
	if st.queries >= st.w.cfg.MaxQueries {
		st.aborted = true
		st.fail(PermFail, "walk stopped after %d lookups (safety cap)", st.queries)
		return answer{}, false
	}
	st.queries++
	ans, err := st.w.cache.lookup(st.ctx, name, qtype)
	if err != nil {
		var te *TempError
		if errors.As(err, &te) {
			st.fail(TempFail, "%s", te)
		} else {
			st.fail(TempFail, "%s %s: %v", name, dns.TypeToString[qtype], err)
		}
		return answer{}, false
	}
	st.minTTL = min(st.minTTL, ans.ttl)
	return ans, true
}

// evalDomain resolves an include or redirect target below the apex and
// adds its pass networks.
func (st *walk) evalDomain(name string, depth int) {
	name = syntax.NormalizeDomain(name)
	if i := slices.Index(st.stack, name); i >= 0 {
		st.loopMin = min(st.loopMin, i)
		st.fail(PermFail, "loop: %s includes %s again", strings.Join(st.stack[i:], " -> "), name)
		return
	}
	if slices.Contains(st.visited, name) {
		return // diamond: already resolved in this walk
	}
	if depth > st.w.cfg.MaxDepth {
		st.depthLimited = true
		st.fail(PermFail, "%s: nesting deeper than %d", name, st.w.cfg.MaxDepth)
		return
	}
	if err := syntax.ValidateDomain(name); err != nil {
		st.fail(PermFail, "%s", err)
		return
	}
	st.visited = append(st.visited, name)
	st.include(name, depth)
}

// evalRecord walks the record of name, which is on no stack yet.
func (st *walk) evalRecord(name string, depth int) {
	st.deepest = max(st.deepest, depth)
	st.stack = append(st.stack, name)
	defer func() { st.stack = st.stack[:len(st.stack)-1] }()

	rec, ok := st.fetchRecord(name)
	if !ok {
		return
	}
	for _, m := range rec.Mechanisms {
		st.evalMechanism(name, m, depth)
	}
	if rec.Redirect != "" && !rec.HasAll {
		st.res.Lookups++
		if strings.Contains(rec.Redirect, "%") {
			st.warn("%s: redirect=%s uses macros and cannot be walked", name, rec.Redirect)
			return
		}
		st.evalDomain(rec.Redirect, depth+1)
	}
}

// subtree is what an include or redirect target contributes. It depends
// only on the target's records, so it is memoised, until its lowest TTL
// runs out, for every domain that includes the same provider: thousands of
// domains include the same few trees.
type subtree struct {
	set               *prefixset.Set // its networks, its own subtrees' included
	refused           []netip.Prefix
	errors, warnings  []string
	status            Status
	mxOver            bool
	lookups, voids    int
	queries, relDepth int
	minTTL            uint32
	expires           time.Time
}

// maxSubtrees bounds the subtree memo.
const maxSubtrees = 20_000

// include walks the subtree of an include or redirect target as a walk of
// its own (memoised), and merges it.
func (st *walk) include(name string, depth int) {
	w := st.w
	w.mu.Lock()
	memo, ok := w.subtrees[name]
	w.mu.Unlock()
	if ok && w.cfg.Now().Before(memo.expires) && freshSince(st.ctx).IsZero() {
		st.merge(memo, depth)
		return
	}
	child := newWalk(st.ctx, w)
	child.stack, child.queries, child.root, child.rootDepth = st.stack, st.queries, len(st.stack), depth
	child.evalRecord(name, depth)
	sub := &subtree{
		set: child.set(), refused: child.res.Refused,
		errors: child.res.Errors, warnings: child.res.Warnings,
		status: child.res.Status, mxOver: child.mxOver, lookups: child.res.Lookups, voids: child.voids,
		queries: child.queries - st.queries, relDepth: child.deepest - depth, minTTL: child.minTTL,
	}
	st.merge(sub, depth)
	st.loopMin = min(st.loopMin, child.loopMin)
	st.aborted = st.aborted || child.aborted
	st.depthLimited = st.depthLimited || child.depthLimited
	// Only a result that does not depend on where it was reached from is
	// kept: no loop back above its root, no cap hit, no temporary failure.
	if child.loopMin >= child.root && !child.aborted && !child.depthLimited && sub.status != TempFail && sub.minTTL > 0 {
		sub.expires = w.cfg.Now().Add(time.Duration(sub.minTTL) * time.Second)
		w.mu.Lock()
		if len(w.subtrees) >= maxSubtrees {
			clear(w.subtrees)
		}
		w.subtrees[name] = sub
		w.mu.Unlock()
	}
}

// set returns the walk's networks: its own and its subtrees'. A
// subtree's are merged ranges already, added as they are.
func (st *walk) set() *prefixset.Set {
	n4, n6 := 0, 0
	for _, p := range st.added {
		if p.Addr().Is6() {
			n6++
		} else {
			n4++
		}
	}
	for _, sub := range st.subs {
		s4, s6 := sub.set.RangeCount()
		n4, n6 = n4+s4, n6+s6
	}
	var b prefixset.Builder
	b.Grow(n4, n6)
	for _, p := range st.added {
		b.Add(p)
	}
	for _, sub := range st.subs {
		b.AddSet(sub.set)
	}
	return b.Set()
}

func (st *walk) merge(sub *subtree, depth int) {
	if depth+sub.relDepth > st.w.cfg.MaxDepth {
		st.depthLimited = true
		st.fail(PermFail, "nesting deeper than %d", st.w.cfg.MaxDepth)
		return
	}
	if st.queries+sub.queries > st.w.cfg.MaxQueries {
		st.aborted = true
		st.fail(PermFail, "walk stopped after %d lookups (safety cap)", st.queries)
		return
	}
	st.queries += sub.queries
	st.subs = append(st.subs, sub)
	st.res.Refused = append(st.res.Refused, sub.refused...)
	st.res.Errors = append(st.res.Errors, sub.errors...)
	st.res.Warnings = append(st.res.Warnings, sub.warnings...)
	st.res.Status = max(st.res.Status, sub.status)
	st.res.Lookups += sub.lookups
	st.voids += sub.voids
	st.mxOver = st.mxOver || sub.mxOver
	st.minTTL = min(st.minTTL, sub.minTTL)
	st.deepest = max(st.deepest, depth+sub.relDepth)
}

// fetchRecord finds and parses the single SPF record of name.
func (st *walk) fetchRecord(name string) (*Record, bool) {
	ans, ok := st.lookup(name, dns.TypeTXT)
	if !ok {
		return nil, false
	}
	if ans.nxdomain {
		st.fail(PermFail, "%s: no such domain (NXDOMAIN)", name)
		return nil, false
	}
	var texts []string
	for _, rr := range ans.records {
		if txt, ok := rr.(*dns.TXT); ok {
			// The strings of one TXT record join with no separator,
			// even in the middle of a term (RFC 7208 section 3.3).
			if s := strings.Join(txt.Txt, ""); IsSPF(s) {
				texts = append(texts, s)
			}
		}
	}
	switch {
	case len(texts) == 0:
		st.fail(PermFail, "%s: no SPF record", name)
		return nil, false
	case len(texts) > 1 && !st.w.cfg.Lenient:
		st.fail(PermFail, "%s: %d SPF records (RFC 7208 allows one)", name, len(texts))
		return nil, false
	}
	if len(texts) == 1 {
		rec, err := ParseRecord(texts[0])
		if err != nil {
			st.fail(PermFail, "%s: %v", name, err)
			return nil, false
		}
		return rec, true
	}
	sort.Strings(texts) // deterministic order for the lenient union
	merged := &Record{}
	for _, t := range texts {
		rec, err := ParseRecord(t)
		if err != nil {
			st.fail(PermFail, "%s: %v", name, err)
			return nil, false
		}
		merged.Mechanisms = append(merged.Mechanisms, rec.Mechanisms...)
		merged.HasAll = merged.HasAll || rec.HasAll
		if rec.Redirect != "" {
			merged.Redirect = rec.Redirect
		}
	}
	if len(texts) > 1 {
		st.warn("%s: %d SPF records, taking their union", name, len(texts))
	}
	return merged, true
}

func (st *walk) evalMechanism(name string, m Mechanism, depth int) {
	switch m.Kind {
	case KindInclude, KindA, KindMX, KindPTR, KindExists:
		st.res.Lookups++
	}
	if m.Qualifier != Pass {
		return // only pass terms whitelist; -include etc. are not expanded
	}
	if m.HasMacro() {
		st.warn("%s: %s uses macros and cannot be walked", name, m.Text)
		return
	}
	target := name
	if m.Domain != "" {
		target = syntax.NormalizeDomain(m.Domain)
	}
	switch m.Kind {
	case KindIP4, KindIP6:
		if m.Masked {
			st.warn("%s: %s has host bits set, using %s", name, m.Text, m.Prefix)
		}
		st.add(name, m.Prefix)
	case KindA:
		if err := syntax.ValidateDomain(target); err != nil {
			st.fail(PermFail, "%s: %s: %v", name, m.Text, err)
			return
		}
		if !st.addHost(name, target, m.V4Len, m.V6Len) {
			st.voids++
		}
	case KindMX:
		st.evalMX(name, target, m)
	case KindInclude:
		st.evalDomain(target, depth+1)
	case KindPTR:
		st.warn("%s: %s cannot be enumerated, skipped", name, m.Text)
	case KindExists:
		st.warn("%s: %s names no senders, skipped", name, m.Text)
	}
}

func (st *walk) evalMX(name, target string, m Mechanism) {
	if err := syntax.ValidateDomain(target); err != nil {
		st.fail(PermFail, "%s: %s: %v", name, m.Text, err)
		return
	}
	ans, ok := st.lookup(target, dns.TypeMX)
	if !ok {
		return
	}
	var mxs []*dns.MX
	for _, rr := range ans.records {
		if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
			mxs = append(mxs, mx) // a null MX ("0 .") names no host
		}
	}
	if len(mxs) == 0 {
		st.voids++
		return
	}
	sort.SliceStable(mxs, func(i, j int) bool {
		if mxs[i].Preference != mxs[j].Preference {
			return mxs[i].Preference < mxs[j].Preference
		}
		return mxs[i].Mx < mxs[j].Mx
	})
	if len(mxs) > maxMX {
		st.mxOver = true
		st.fail(PermFail, "%s: %s names %d MX hosts, more than %d (RFC 7208 section 4.6.4)", name, m.Text, len(mxs), maxMX)
		return
	}
	for _, mx := range mxs {
		host := syntax.NormalizeDomain(mx.Mx)
		if syntax.ValidateDomain(host) != nil {
			st.warn("%s: %s: invalid MX host %q skipped", name, m.Text, mx.Mx)
			continue
		}
		st.addHost(name, host, m.V4Len, m.V6Len)
	}
}

// addHost adds host's A and AAAA addresses with the dual-CIDR lengths; it
// reports whether any address was found.
func (st *walk) addHost(name, host string, v4len, v6len int) bool {
	found := false
	for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		ans, ok := st.lookup(host, qtype)
		if !ok {
			continue
		}
		for _, rr := range ans.records {
			var addr netip.Addr
			bits := v4len
			switch rr := rr.(type) {
			case *dns.A:
				addr, _ = netip.AddrFromSlice(rr.A.To4())
			case *dns.AAAA:
				addr, _ = netip.AddrFromSlice(rr.AAAA.To16())
				bits = v6len
			}
			if !addr.IsValid() {
				continue
			}
			found = true
			st.add(name, netip.PrefixFrom(addr, bits).Masked())
		}
	}
	return found
}

func (st *walk) add(name string, p netip.Prefix) {
	floor := st.w.cfg.MinIPv4Len
	if p.Addr().Is6() {
		floor = st.w.cfg.MinIPv6Len
	}
	if p.Bits() < floor {
		st.res.Refused = append(st.res.Refused, p)
		st.warn("%s: %s is broader than /%d, refused", name, p, floor)
		return
	}
	st.added = append(st.added, p)
}

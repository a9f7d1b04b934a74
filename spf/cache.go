package spf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/spfd/spfd/internal/syntax"
)

// TempError is a DNS failure that may go away: a timeout, a network error,
// SERVFAIL or REFUSED. It must never shrink a whitelist.
type TempError struct {
	Name  string
	Type  uint16
	Rcode int // -1 for network errors and timeouts
	Err   error
}

func (e *TempError) Error() string {
	what := ""
	var ne net.Error
	switch {
	case e.Rcode >= 0:
		what = dns.RcodeToString[e.Rcode]
	case errors.As(e.Err, &ne) && ne.Timeout():
		what = "timeout"
	case e.Err != nil:
		what = e.Err.Error()
	}
	return fmt.Sprintf("%s %s: temporary DNS failure: %s", strings.TrimSuffix(e.Name, "."), dns.TypeToString[e.Type], what)
}

func (e *TempError) Unwrap() error { return e.Err }

// answer is a definitive DNS answer: records of the asked type (CNAMEs
// already followed), or none with NXDOMAIN or NODATA.
type answer struct {
	nxdomain bool
	records  []dns.RR
	ttl      uint32 // lowest TTL along the way, or the negative-caching TTL
}

// defaultNegativeTTL applies when a negative answer carries no SOA.
const defaultNegativeTTL = 300

// maxCNAMEChain bounds CNAME chasing across queries.
const maxCNAMEChain = 8

// maxCacheEntries bounds the cache; past it, expired entries go first and,
// if that is not enough, everything.
const maxCacheEntries = 200_000

type cacheKey struct {
	name  string
	qtype uint16
}

type cacheEntry struct {
	done    chan struct{}
	ans     answer
	err     error
	expires time.Time
	fetched time.Time
}

type freshKey struct{}

// Fresh marks walks under ctx as asking the servers again: answers
// cached before now are not used (spfctl rewalk). Answers fetched after
// now, by this walk or a concurrent one, are.
func Fresh(ctx context.Context, now time.Time) context.Context {
	return context.WithValue(ctx, freshKey{}, now)
}

// freshSince returns the time before which cached answers are stale for
// ctx, zero when any unexpired answer will do.
func freshSince(ctx context.Context) time.Time {
	t, _ := ctx.Value(freshKey{}).(time.Time)
	return t
}

// cache is shared by all walks: it honours TTLs and coalesces concurrent
// queries for the same name and type into one.
type cache struct {
	ex  Exchanger
	now func() time.Time

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	asked   atomic.Int64 // distinct questions put to the exchanger
}

func newCache(ex Exchanger, now func() time.Time) *cache {
	return &cache{ex: ex, now: now, entries: make(map[cacheKey]*cacheEntry)}
}

// lookup answers name/qtype, following CNAMEs, from the cache when it can.
func (c *cache) lookup(ctx context.Context, name string, qtype uint16) (answer, error) {
	ans, err := c.get(ctx, name, qtype)
	if err != nil {
		return answer{}, err
	}
	// Chase a CNAME chain that the answer left unfinished (an authoritative
	// server answers only from its own zones).
	for hops := 0; len(ans.records) == 1 && hops < maxCNAMEChain; hops++ {
		cn, ok := ans.records[0].(*dns.CNAME)
		if !ok || qtype == dns.TypeCNAME {
			break
		}
		next, err := c.get(ctx, cn.Target, qtype)
		if err != nil {
			return answer{}, err
		}
		next.ttl = min(next.ttl, ans.ttl)
		ans = next
	}
	if len(ans.records) == 1 {
		if _, ok := ans.records[0].(*dns.CNAME); ok && qtype != dns.TypeCNAME {
			return answer{}, &TempError{Name: name, Type: qtype, Rcode: -1, Err: fmt.Errorf("CNAME chain longer than %d", maxCNAMEChain)}
		}
	}
	return ans, nil
}

func (c *cache) get(ctx context.Context, name string, qtype uint16) (answer, error) {
	// Normalised as walk names are (no allocation for those).
	key := cacheKey{syntax.NormalizeDomain(name), qtype}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		select {
		case <-e.done:
			if c.now().Before(e.expires) && !e.fetched.Before(freshSince(ctx)) {
				c.mu.Unlock()
				return e.ans, nil
			}
		default:
			c.mu.Unlock()
			select {
			case <-e.done:
				return e.ans, e.err
			case <-ctx.Done():
				return answer{}, ctx.Err()
			}
		}
	}
	if len(c.entries) >= maxCacheEntries {
		c.evictLocked()
	}
	e := &cacheEntry{done: make(chan struct{})}
	c.entries[key] = e
	c.mu.Unlock()

	c.asked.Add(1)
	e.ans, e.err = c.query(ctx, key.name, qtype)
	c.mu.Lock()
	if e.err != nil {
		// Failures are not cached: the next walk asks again.
		delete(c.entries, key)
	} else {
		e.fetched = c.now()
		e.expires = e.fetched.Add(time.Duration(e.ans.ttl) * time.Second)
	}
	c.mu.Unlock()
	close(e.done)
	return e.ans, e.err
}

func (c *cache) evictLocked() {
	now := c.now()
	for k, e := range c.entries {
		select {
		case <-e.done:
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		default:
		}
	}
	if len(c.entries) >= maxCacheEntries {
		for k, e := range c.entries {
			select {
			case <-e.done:
				delete(c.entries, k)
			default:
			}
		}
	}
}

func (c *cache) query(ctx context.Context, name string, qtype uint16) (answer, error) {
	var resp *dns.Msg
	var err error
	if qe, ok := c.ex.(QuestionExchanger); ok {
		resp, err = qe.ExchangeQuestion(ctx, name, qtype)
	} else {
		resp, err = c.ex.Exchange(ctx, NewQuery(name, qtype))
	}
	if err != nil {
		if ctx.Err() != nil {
			return answer{}, ctx.Err()
		}
		return answer{}, &TempError{Name: name, Type: qtype, Rcode: -1, Err: err}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
	case dns.RcodeNameError:
		return answer{nxdomain: true, ttl: negativeTTL(resp)}, nil
	default:
		return answer{}, &TempError{Name: name, Type: qtype, Rcode: resp.Rcode}
	}
	return extract(resp, name, qtype), nil
}

// extract follows the CNAME chain inside one response from name and returns
// the records of qtype at its end; or the last CNAME when the chain leaves
// the response, so the caller can ask for its target.
func extract(resp *dns.Msg, name string, qtype uint16) answer {
	ans := answer{ttl: ^uint32(0)}
	current := dns.Fqdn(name)
	var lastCNAME dns.RR
	for hops := 0; hops <= maxCNAMEChain; hops++ {
		var next string
		for _, rr := range resp.Answer {
			h := rr.Header()
			if !strings.EqualFold(h.Name, current) {
				continue
			}
			if h.Rrtype == qtype {
				ans.records = append(ans.records, rr)
				ans.ttl = min(ans.ttl, h.Ttl)
			} else if cn, ok := rr.(*dns.CNAME); ok && next == "" {
				next = cn.Target
				lastCNAME = rr
				ans.ttl = min(ans.ttl, h.Ttl)
			}
		}
		if len(ans.records) > 0 || next == "" {
			break
		}
		current = next
	}
	if len(ans.records) == 0 {
		if lastCNAME != nil && !strings.EqualFold(current, dns.Fqdn(name)) {
			// The chain ends outside this response: hand back the CNAME.
			return answer{records: []dns.RR{lastCNAME}, ttl: ans.ttl}
		}
		return answer{ttl: min(ans.ttl, negativeTTL(resp))}
	}
	return ans
}

func negativeTTL(resp *dns.Msg) uint32 {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return defaultNegativeTTL
}

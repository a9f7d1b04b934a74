package daemon

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/clock"
	"github.com/spfd/spfd/internal/state"
)

// With a fake clock, expiry, the walk schedule and feed refreshes happen
// when the clock says, with no sleeping: each step advances the clock and
// waits (on the real clock, briefly) for the loop to act.
func TestTimersFollowTheClock(t *testing.T) {
	dir := t.TempDir()
	feedFile := filepath.Join(dir, "drop.txt")
	if err := os.WriteFile(feedFile, []byte("198.51.100.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	h := newHarnessWith(t, exampleZone, fmt.Sprintf("domain example.com\nfeed drop black file %q refresh 1h\n", feedFile),
		func(o *Options) { o.Now, o.Clock = nil, fake })
	ctx := h.run(t)
	held := func(list state.List, p string) bool {
		return h.d.state.Contains(list, netip.MustParsePrefix(p))
	}
	waitUntil(t, func() bool { return held(state.White, "192.0.2.0/24") && held(state.Black, "198.51.100.0/24") })

	// The feed's file changes; it is read again when its hour is up.
	if err := os.WriteFile(feedFile, []byte("198.18.0.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Expiry: a 1h entry goes when the clock passes the hour.
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", "203.0.113.7", "ttl", "1h"}}, io.Discard); err != nil {
		t.Fatal(err)
	}
	fake.Advance(59 * time.Minute)
	if !held(state.Black, "203.0.113.7/32") {
		t.Fatal("expired early")
	}
	fake.Advance(2 * time.Minute)
	waitUntil(t, func() bool { return !held(state.Black, "203.0.113.7/32") })

	waitUntil(t, func() bool { return held(state.Black, "198.18.0.0/24") && !held(state.Black, "198.51.100.0/24") })

	// The walk schedule: the record changes; the domain is walked again
	// at its next walk, about an hour after the last (which the advances
	// above may have brought already).
	h.dns.Replace(t, "example.com", 16, `example.com. 600 IN TXT "v=spf1 ip4:192.0.2.0/25 -all"`)
	next := h.domain("example.com").NextWalk
	if d := next.Sub(fake.Now()); d > time.Hour {
		t.Fatalf("next walk in %v", d)
	}
	fake.Advance(max(0, next.Sub(fake.Now())) + time.Minute)
	// A walk in flight during the change may have read the old record:
	// the clock moves on by the minute until the next one reads the new.
	waitUntil(t, func() bool {
		if held(state.White, "192.0.2.0/25") {
			return true
		}
		fake.Advance(time.Minute)
		return false
	})
	got := h.d.state.SourcePrefixes(state.White, state.PrefixSPF+"example.com")
	if !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("192.0.2.0/25")}) {
		t.Errorf("after the scheduled walk: %v", got)
	}
}

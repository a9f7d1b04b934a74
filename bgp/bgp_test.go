package bgp

import (
	"context"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/spfd/spfd/internal/runtest"
)

func pfx(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Two speakers on 127.0.0.2 and 127.0.0.3 exchange lists: what one
// announces with a list's community, the other receives into that list,
// and withdrawals and a lost session (after the hold) take it away.
func TestTwoSpeakers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs runtest.Buffer
	a, err := Start(ctx, Config{ASN: 65001, RouterID: "127.0.0.2", Listen: []string{"127.0.0.2"}, Port: 11790, Hold: 200 * time.Millisecond,
		Neighbors: []Neighbor{{Address: "127.0.0.3", ASN: 65002, LocalAddress: "127.0.0.2", Port: 11791}},
		Logger:    log.NewLogfmtLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	bctx, bcancel := context.WithCancel(ctx)
	b, err := Start(bctx, Config{ASN: 65002, RouterID: "127.0.0.3", Listen: []string{"127.0.0.3"}, Port: 11791,
		Neighbors: []Neighbor{{Address: "127.0.0.2", ASN: 65001, LocalAddress: "127.0.0.3", Port: 11790}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Announce(ctx, "black", pfx("203.0.113.5/32", "2001:db8::bad/128")); err != nil {
		t.Fatal(err)
	}
	if err := a.Announce(ctx, "white", pfx("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	got := func(s *Speaker, list string) []netip.Prefix {
		var out []netip.Prefix
		for _, ps := range s.Received(list) {
			out = append(out, ps...)
		}
		slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
		return out
	}
	waitFor(t, "b to receive a's blacklist", func() bool { return slices.Equal(got(b, "black"), pfx("203.0.113.5/32", "2001:db8::bad/128")) })
	waitFor(t, "b to receive a's whitelist", func() bool { return slices.Equal(got(b, "white"), pfx("192.0.2.0/24")) })
	if rx := b.Received("black"); len(rx["127.0.0.2"]) != 2 {
		t.Errorf("routes not attributed to the neighbor: %v", rx)
	}
	ns, err := b.Neighbors(ctx)
	if err != nil || len(ns) != 1 || ns[0].State != "established" || ns[0].Received != 3 {
		t.Errorf("neighbors %+v %v", ns, err)
	}
	// A withdrawal.
	if err := a.Announce(ctx, "black", pfx("203.0.113.5/32")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the withdrawal", func() bool { return slices.Equal(got(b, "black"), pfx("203.0.113.5/32")) })
	// b announces back; a hears it.
	if err := b.Announce(ctx, "black", pfx("198.51.100.66/32")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a to receive b's route", func() bool { return slices.Equal(got(a, "black"), pfx("198.51.100.66/32")) })
	// b goes away: a keeps its routes for the hold time, then drops them.
	bcancel()
	waitFor(t, "a to drop b's routes after the hold", func() bool { return len(got(a, "black")) == 0 })
	// The session's life is in a's log: up at info, down at warning
	// with the routes held; the reason stays in show neighbors.
	for _, want := range []string{`level=info msg="bgp session up" neighbor=127.0.0.3`,
		`level=warn msg="bgp session down" neighbor=127.0.0.3`, "routes-held=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("a's log lacks %q:\n%s", want, logs.String())
		}
	}
	if ns, _ := a.Neighbors(ctx); len(ns) != 1 || ns[0].LastError == "" {
		t.Errorf("no last error after the session was lost: %+v", ns)
	}
}

func TestCommunities(t *testing.T) {
	c, err := ParseCommunity("65066:666")
	if err != nil || c != DefaultBlackCommunity || FormatCommunity(c) != "65066:666" {
		t.Fatalf("%d %v", c, err)
	}
	for _, bad := range []string{"65066", "70000:1", "a:b", "1:70000"} {
		if _, err := ParseCommunity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// On Linux a TCP-MD5 key can be set on spfd's plain TCP sockets; the
// check that guards neighbor passwords passes here (CI runs Linux with
// TCP_MD5SIG, as Debian's kernels have it).
func TestCheckMD5(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP-MD5 is set up by ipsecctl on OpenBSD")
	}
	for _, a := range []string{"127.0.0.4", "::1"} {
		if err := CheckMD5(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
}

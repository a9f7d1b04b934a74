package bgp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// pair starts speaker a (AS 65001 on 127.0.0.2) with neighbor b (AS
// 65002 on 127.0.0.3) configured as nb, and b with a; ports are apart
// per test. It returns a, and a function that starts b (again).
func pair(t *testing.T, port int32, nb Neighbor, bPassword string) (a *Speaker, startB func(ctx context.Context) *Speaker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	nb.Address, nb.ASN, nb.LocalAddress, nb.Port = "127.0.0.3", 65002, "127.0.0.2", uint32(port+1)
	a, err := Start(ctx, Config{ASN: 65001, RouterID: "127.0.0.2", Listen: []string{"127.0.0.2"}, Port: port, Hold: time.Minute,
		Neighbors: []Neighbor{nb}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.Wait() })
	return a, func(ctx context.Context) *Speaker {
		b, err := Start(ctx, Config{ASN: 65002, RouterID: "127.0.0.3", Listen: []string{"127.0.0.3"}, Port: port + 1,
			Neighbors: []Neighbor{{Address: "127.0.0.2", ASN: 65001, LocalAddress: "127.0.0.3", Port: uint32(port), Password: bPassword}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Wait)
		return b
	}
}

func neighbor(t *testing.T, s *Speaker) NeighborState {
	t.Helper()
	ns, err := s.Neighbors(context.Background())
	if err != nil || len(ns) != 1 {
		t.Fatalf("neighbors %+v %v", ns, err)
	}
	return ns[0]
}

// A neighbor that sends more routes of a family than max-prefix gets a
// Cease (maximum number of prefixes reached) and is refused for a while;
// the routes it sent before are kept, the one past the limit is not.
func TestMaxPrefix(t *testing.T) {
	a, startB := pair(t, 11810, Neighbor{MaxPrefix: 2}, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := startB(ctx)
	waitFor(t, "the session", func() bool { return neighbor(t, a).State == "established" })
	b.Announce(ctx, "black", pfx("192.0.2.1/32", "192.0.2.2/32"))
	waitFor(t, "two routes", func() bool { return len(a.Received("black")["127.0.0.3"]) == 2 })
	b.Announce(ctx, "black", pfx("192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "2001:db8::1/128"))
	waitFor(t, "the session torn down", func() bool {
		return strings.Contains(neighbor(t, a).LastError, "sent notification: cease, maximum number of prefixes reached")
	})
	waitFor(t, "b told why", func() bool {
		return strings.Contains(neighbor(t, b).LastError, "received notification: cease, maximum number of prefixes reached")
	})
	if got := a.Received("black")["127.0.0.3"]; len(got) != 2 || slices.Contains(got, pfx("192.0.2.3/32")[0]) {
		t.Errorf("routes held after the limit: %v", got)
	}
	time.Sleep(2 * firstRetry)
	if st := neighbor(t, a).State; st == "established" {
		t.Errorf("the neighbor came back within the idle time")
	}
}

// A neighbor that comes back sends its table again: a route it no
// longer sends goes once it marks the end of its table, and the routes
// it sends again stay throughout.
func TestStaleRoutesSwept(t *testing.T) {
	a, startB := pair(t, 11820, Neighbor{}, "")
	ctx1, cancel1 := context.WithCancel(context.Background())
	b := startB(ctx1)
	b.Announce(ctx1, "black", pfx("192.0.2.1/32", "192.0.2.2/32"))
	waitFor(t, "two routes", func() bool { return len(a.Received("black")["127.0.0.3"]) == 2 })
	cancel1()
	b.Wait()
	waitFor(t, "the session down", func() bool { return neighbor(t, a).State != "established" })
	if got := a.Received("black")["127.0.0.3"]; len(got) != 2 {
		t.Fatalf("routes not held while down: %v", got)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	b = startB(ctx2)
	b.Announce(ctx2, "black", pfx("192.0.2.1/32"))
	waitFor(t, "the route not sent again swept", func() bool {
		got := a.Received("black")["127.0.0.3"]
		if !slices.Contains(got, pfx("192.0.2.1/32")[0]) {
			t.Fatalf("a route sent again went missing: %v", got)
		}
		return len(got) == 1
	})
}

// TCP-MD5 both ways: a speaker with the right password comes up, one
// without never does (the kernel drops its unsigned segments).
func TestMD5Sessions(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP-MD5 keys are set on Linux only")
	}
	a, startB := pair(t, 11830, Neighbor{Password: "s3cret"}, "s3cret")
	ctx, cancel := context.WithCancel(context.Background())
	b := startB(ctx)
	b.Announce(ctx, "black", pfx("192.0.2.44/32"))
	waitFor(t, "the signed route", func() bool { return len(a.Received("black")["127.0.0.3"]) == 1 })
	cancel()
	b.Wait()

	a2, startB2 := pair(t, 11840, Neighbor{Password: "s3cret"}, "")
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	b2 := startB2(ctx2)
	b2.Announce(ctx2, "black", pfx("192.0.2.55/32"))
	time.Sleep(3 * time.Second)
	if st := neighbor(t, a2).State; st == "established" || len(a2.Received("black")) > 0 {
		t.Errorf("an unsigned session: %s, %v", st, a2.Received("black"))
	}
}

// A speaker stops when its context ends: every session, reader, writer
// and listener goroutine, with a session established and one dialing.
func TestSpeakerStops(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, Config{ASN: 65001, RouterID: "127.0.0.2", Listen: []string{"127.0.0.2"}, Port: 11850,
		Neighbors: []Neighbor{{Address: "127.0.0.3", ASN: 65002, LocalAddress: "127.0.0.2", Port: 11851},
			{Address: "127.0.0.9", ASN: 65009, LocalAddress: "127.0.0.2", Port: 11859}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Start(ctx, Config{ASN: 65002, RouterID: "127.0.0.3", Listen: []string{"127.0.0.3"}, Port: 11851,
		Neighbors: []Neighbor{{Address: "127.0.0.2", ASN: 65001, LocalAddress: "127.0.0.3", Port: 11850}}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the session", func() bool { return neighbor(t, b).State == "established" })
	cancel()
	done := make(chan struct{})
	go func() { a.Wait(); b.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the speakers did not stop")
	}
	waitFor(t, "the goroutines gone", func() bool { return runtime.NumGoroutine() <= before+1 })
}

// A neighbor that sends garbage gets a NOTIFICATION and is cut off,
// without harm to the speaker: a bad marker, an oversized length, and
// an UPDATE whose attributes overrun it after a proper OPEN.
func TestHostileNeighbor(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, Config{ASN: 65001, RouterID: "127.0.0.2", Listen: []string{"127.0.0.2"}, Port: 11860,
		Neighbors: []Neighbor{{Address: "127.0.0.3", ASN: 65002, LocalAddress: "127.0.0.2", Port: 1}}}) // it dials a closed port
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); a.Wait() }()
	dial := func() net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", "127.0.0.2:11860")
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// readNotification reads messages until a NOTIFICATION and returns
	// its code and subcode.
	readNotification := func(c net.Conn) (uint8, uint8) {
		t.Helper()
		var hdr [headerLen]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				t.Fatalf("no NOTIFICATION: %v", err)
			}
			body := make([]byte, int(binary.BigEndian.Uint16(hdr[16:18]))-headerLen)
			if _, err := io.ReadFull(c, body); err != nil {
				t.Fatal(err)
			}
			if hdr[18] == msgNotification {
				return body[0], body[1]
			}
		}
	}
	for _, tc := range []struct {
		name      string
		open      bool // send a proper OPEN and KEEPALIVE first
		send      []byte
		code, sub uint8
	}{
		{"bad marker", false, append(make([]byte, 16), 0, 19, msgKeepalive), errHeader, 1},
		{"oversized", false, appendHeader(nil, msgUpdate, maxMsgLen), errHeader, subBadLength},
		{"attributes overrun", true, append(appendHeader(nil, msgUpdate, 8), 0, 0, 0, 4, 0x40, 1, 9, 0), errUpdate, subAttrList},
	} {
		c := dial()
		if tc.open {
			c.Write(marshalOpen(65002, 90, netip.MustParseAddr("127.0.0.3")))
			c.Write(marshalKeepalive())
		}
		c.Write(tc.send)
		if code, sub := readNotification(c); code != tc.code || sub != tc.sub {
			t.Errorf("%s: NOTIFICATION %d/%d (%s), want %d/%d", tc.name, code, sub, notificationText(code, sub), tc.code, tc.sub)
		}
		c.Close()
	}
	if got := a.Received("black"); len(got["127.0.0.3"]) != 0 {
		t.Errorf("routes from garbage: %v", got)
	}
	if n := neighbor(t, a); !strings.Contains(n.LastError, "sent notification") {
		t.Errorf("last error %q", n.LastError)
	}
}

// The max-prefix Cease names the family whose limit was passed (RFC
// 4486), also in an UPDATE that carries both; routes a previous session
// left count against the limit once sent again.
func TestMaxPrefixCease(t *testing.T) {
	sp := &Speaker{cfg: Config{White: DefaultWhiteCommunity, Black: DefaultBlackCommunity}, rib: make(map[string]*ribIn)}
	black := []uint32{DefaultBlackCommunity}
	if err := sp.apply("n", &update{announced: pfx("192.0.2.1/32", "192.0.2.2/32"), communities: black}, 2); err != nil {
		t.Fatal(err)
	}
	err := sp.apply("n", &update{announced: pfx("2001:db8::1/128", "192.0.2.3/32"), communities: black}, 2)
	var ne *notifyError
	if !errors.As(err, &ne) || ne.sub != ceaseMaxPrefix {
		t.Fatalf("third IPv4 route: %v", err)
	}
	if want := []byte{0, afiIPv4, safiUnicast, 0, 0, 0, 2}; !bytes.Equal(ne.data, want) {
		t.Errorf("Cease data %v, want %v (IPv4, limit 2)", ne.data, want)
	}
	// A new session, with the limit lowered to 1: the two old routes
	// sent again are two of this session's.
	sp.sessionUp("n")
	if err := sp.apply("n", &update{announced: pfx("192.0.2.1/32", "192.0.2.2/32"), communities: black}, 1); !errors.As(err, &ne) {
		t.Errorf("two old routes sent again under a limit of 1: %v", err)
	}
}

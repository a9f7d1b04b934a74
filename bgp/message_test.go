package bgp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// What the builder encodes, the parser reads back: prefixes of both
// families, announced with a community and withdrawn, split over as many
// messages as the 4096-byte limit needs.
func TestUpdateRoundTrip(t *testing.T) {
	var many []netip.Prefix
	for i := range 3000 {
		many = append(many, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32))
	}
	var many6 []netip.Prefix
	for i := range 500 {
		many6 = append(many6, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}), 128))
	}
	for _, tc := range []struct {
		name     string
		ps       []netip.Prefix
		withdraw bool
		pa       pathAttrs
	}{
		{"ipv4 ebgp", pfx("203.0.113.5/32", "198.51.100.0/24", "0.0.0.0/0"), false, pathAttrs{localAS: 65001, ebgp: true, as4: true, nextHop4: netip.MustParseAddr("127.0.0.2")}},
		{"ipv6 ibgp", pfx("2001:db8::bad/128", "2001:db8:1::/48"), false, pathAttrs{localAS: 65001, nextHop6: netip.MustParseAddr("::ffff:127.0.0.2")}},
		{"four-octet AS without the capability", pfx("203.0.113.5/32"), false, pathAttrs{localAS: 4200000000, ebgp: true, nextHop4: netip.MustParseAddr("127.0.0.2")}},
		{"many ipv4", many, false, pathAttrs{localAS: 65001, ebgp: true, as4: true, nextHop4: netip.MustParseAddr("127.0.0.2")}},
		{"many ipv6", many6, false, pathAttrs{localAS: 65001, ebgp: true, as4: true, nextHop6: netip.MustParseAddr("2001:db8::1")}},
		{"withdraw ipv4", many, true, pathAttrs{}},
		{"withdraw ipv6", many6, true, pathAttrs{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ub := updateBuilder{pa: tc.pa}
			if tc.withdraw {
				ub.withdraw(tc.ps)
			} else {
				ub.announce(tc.ps, DefaultBlackCommunity)
			}
			var got []netip.Prefix
			var u update
			for _, m := range ub.msgs {
				typ, n, err := parseHeader(m)
				if err != nil || typ != msgUpdate || n != len(m) || n > maxMsgLen {
					t.Fatalf("header: type %d length %d of %d: %v", typ, n, len(m), err)
				}
				if err := parseUpdate(m[headerLen:], &u); err != nil {
					t.Fatal(err)
				}
				if tc.withdraw {
					if len(u.announced) > 0 {
						t.Fatalf("a withdrawal announced %v", u.announced)
					}
					got = append(got, u.withdrawn...)
					continue
				}
				if !slices.Equal(u.communities, []uint32{DefaultBlackCommunity}) || len(u.withdrawn) > 0 {
					t.Fatalf("communities %v, withdrawn %v", u.communities, u.withdrawn)
				}
				got = append(got, u.announced...)
			}
			if !slices.Equal(got, tc.ps) {
				t.Fatalf("read back %d prefixes, want %d: %v", len(got), len(tc.ps), got[:min(len(got), 5)])
			}
			if len(tc.ps) > 1000 && len(ub.msgs) < 2 {
				t.Fatalf("%d prefixes in %d message", len(tc.ps), len(ub.msgs))
			}
		})
	}
}

// An UPDATE as OpenBGPD sends it: ORIGIN, AS_PATH (four-octet),
// NEXT_HOP, COMMUNITIES 65066:666 and one IPv4 prefix; and the faults a
// neighbor can put in one.
func TestParseUpdate(t *testing.T) {
	attrs := func(as ...[]byte) []byte { return bytes.Join(as, nil) }
	origin := []byte{0x40, 1, 1, 0}
	path := []byte{0x40, 2, 6, 2, 1, 0, 0, 0xfe, 0x2a} // AS_SEQUENCE 65066
	nh := []byte{0x40, 3, 4, 127, 0, 0, 4}
	comm := []byte{0xc0, 8, 4, 0xfe, 0x2a, 0x02, 0x9a} // 65066:666
	body := func(withdrawn, a, nlri []byte) []byte {
		b := binary.BigEndian.AppendUint16(nil, uint16(len(withdrawn)))
		b = append(b, withdrawn...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
		b = append(b, a...)
		return append(b, nlri...)
	}
	for _, tc := range []struct {
		name                 string
		body                 []byte
		announced, withdrawn string
		communities          int
		err                  string
	}{
		{name: "bgpd's route", body: body(nil, attrs(origin, path, nh, comm), []byte{32, 192, 0, 2, 99}),
			announced: "[192.0.2.99/32]", withdrawn: "[]", communities: 1},
		{name: "withdrawal", body: body([]byte{24, 198, 51, 100}, nil, nil), announced: "[]", withdrawn: "[198.51.100.0/24]"},
		{name: "host bits past the length", body: body(nil, attrs(origin, comm), []byte{8, 10}), announced: "[10.0.0.0/8]", withdrawn: "[]", communities: 1},
		{name: "bad community length: treated as withdraw", body: body(nil, attrs(origin, []byte{0xc0, 8, 3, 1, 2, 3}), []byte{32, 192, 0, 2, 99}),
			announced: "[]", withdrawn: "[192.0.2.99/32]"},
		{name: "repeated community attribute: the first counts", body: body(nil, attrs(comm, []byte{0xc0, 8, 4, 0xfe, 0x2a, 0, 42}), []byte{32, 192, 0, 2, 99}),
			announced: "[192.0.2.99/32]", withdrawn: "[]", communities: 1},
		{name: "prefix longer than 32", body: body(nil, nil, []byte{33, 1, 2, 3, 4, 5}), err: "invalid network field"},
		{name: "prefix overruns", body: body(nil, nil, []byte{32, 1, 2}), err: "invalid network field"},
		{name: "withdrawn length overruns", body: []byte{0, 9, 1, 2}, err: "malformed attribute list"},
		{name: "attribute overruns", body: body(nil, []byte{0x40, 1, 9, 0}, nil), err: "malformed attribute list"},
		{name: "extended length overruns", body: body(nil, []byte{0x50, 8, 0xff, 0xff, 0}, nil), err: "malformed attribute list"},
		{name: "repeated MP_REACH", body: body(nil, attrs(mpReach6(), mpReach6()), nil), err: "malformed attribute list"},
		{name: "MP_REACH ipv6", body: body(nil, attrs(comm, mpReach6()), nil), announced: "[2001:db8::bad/128]", withdrawn: "[]", communities: 1},
		{name: "MP_UNREACH ipv6", body: body(nil, attrs([]byte{0x80, 15, 3 + 17, 0, 2, 1, 128, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xb, 0xad}), nil),
			announced: "[]", withdrawn: "[2001:db8::bad/128]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var u update
			err := parseUpdate(tc.body, &u)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmtPrefixes(u.announced); got != tc.announced {
				t.Errorf("announced %s, want %s", got, tc.announced)
			}
			if got := fmtPrefixes(u.withdrawn); got != tc.withdrawn {
				t.Errorf("withdrawn %s, want %s", got, tc.withdrawn)
			}
			if len(u.communities) != tc.communities {
				t.Errorf("communities %v", u.communities)
			}
		})
	}
}

func mpReach6() []byte {
	v := []byte{0, 2, 1, 16}
	v = append(v, netip.MustParseAddr("2001:db8::1").AsSlice()...)
	v = append(v, 0, 128)
	v = append(v, netip.MustParseAddr("2001:db8::bad").AsSlice()...)
	return append([]byte{0x80, 14, byte(len(v))}, v...)
}

func fmtPrefixes(ps []netip.Prefix) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, " ") + "]"
}

// An OPEN with the capabilities OpenBGPD 7 offers by default
// (multiprotocol IPv4 and IPv6, route refresh, graceful restart,
// four-octet AS, enhanced route refresh), each in its own optional
// parameter; the interop tests in e2e run against the real bgpd.
func TestParseOpenFromBGPD(t *testing.T) {
	body, _ := hex.DecodeString("04fe2a00b47f00000420" + "02060104000100010206010400020001" + "0202020002024000020641040000fe2a02024600")
	body[9] = byte(len(body) - 10)
	o, err := parseOpen(body)
	if err != nil {
		t.Fatal(err)
	}
	if o.as != 65066 || !o.as4 || o.hold != 180 || o.id != netip.MustParseAddr("127.0.0.4") || !o.ipv4 || !o.ipv6 {
		t.Fatalf("%+v", o)
	}
	// What spfd sends, it reads.
	m := marshalOpen(4200000000, 90, netip.MustParseAddr("127.0.0.2"))
	if _, n, err := parseHeader(m); err != nil || n != len(m) {
		t.Fatal(n, err)
	}
	o, err = parseOpen(m[headerLen:])
	if err != nil || o.as != 4200000000 || o.hold != 90 || !o.ipv6 {
		t.Fatalf("%+v %v", o, err)
	}
	for name, bad := range map[string][]byte{
		"version 3":   {3, 0xfe, 0x2a, 0, 180, 127, 0, 0, 4, 0},
		"hold 2":      {4, 0xfe, 0x2a, 0, 2, 127, 0, 0, 4, 0},
		"id 0.0.0.0":  {4, 0xfe, 0x2a, 0, 180, 0, 0, 0, 0, 0},
		"params long": {4, 0xfe, 0x2a, 0, 180, 127, 0, 0, 4, 9, 2},
		"cap overrun": {4, 0xfe, 0x2a, 0, 180, 127, 0, 0, 4, 4, 2, 2, 65, 9},
	} {
		var ne *notifyError
		if _, err := parseOpen(bad); !errors.As(err, &ne) || ne.code != errOpen && ne.code != errHeader {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseHeader(t *testing.T) {
	ok := appendHeader(nil, msgKeepalive, 0)
	if typ, n, err := parseHeader(ok); err != nil || typ != msgKeepalive || n != headerLen {
		t.Fatal(typ, n, err)
	}
	bad := map[string][]byte{
		"marker":          append([]byte{0}, ok[1:]...),
		"type 9":          appendHeader(nil, 9, 0),
		"keepalive body":  appendHeader(nil, msgKeepalive, 1),
		"over 4096":       appendHeader(nil, msgUpdate, maxMsgLen),
		"short update":    appendHeader(nil, msgUpdate, 3),
		"short open":      appendHeader(nil, msgOpen, 9),
		"short notifying": appendHeader(nil, msgNotification, 1),
	}
	for name, h := range bad {
		if _, _, err := parseHeader(h); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

// The parsers take whatever a neighbor sends: never a panic, never a
// prefix that is not a valid, masked prefix of its family.
func FuzzParseUpdate(f *testing.F) {
	ub := updateBuilder{pa: pathAttrs{localAS: 65001, ebgp: true, as4: true, nextHop4: netip.MustParseAddr("127.0.0.2"), nextHop6: netip.MustParseAddr("::ffff:127.0.0.2")}}
	ub.announce(pfx("203.0.113.5/32", "198.51.100.0/24"), DefaultBlackCommunity)
	ub.announce(pfx("2001:db8::bad/128"), DefaultWhiteCommunity)
	ub.withdraw(pfx("192.0.2.1/32"))
	ub.withdraw(pfx("2001:db8::1/128"))
	for _, m := range ub.msgs {
		f.Add(m[headerLen:])
	}
	f.Add(marshalOpen(65001, 90, netip.MustParseAddr("127.0.0.2"))[headerLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		var u update
		if err := parseUpdate(body, &u); err == nil {
			for _, p := range slices.Concat(u.announced, u.withdrawn) {
				if !p.IsValid() || p.Masked() != p {
					t.Fatalf("prefix %v", p)
				}
			}
		}
		parseOpen(body)
		if len(body) >= headerLen {
			parseHeader(body)
		}
	})
}

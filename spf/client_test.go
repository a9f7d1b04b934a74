package spf

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func responseSeeds(t testing.TB) [][]byte {
	mk := func(edit func(r *dns.Msg)) []byte {
		q := NewQuery("example.org", dns.TypeTXT)
		r := new(dns.Msg)
		r.SetReply(q)
		edit(r)
		wire, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return wire
	}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	return [][]byte{
		mk(func(r *dns.Msg) {
			r.Answer = []dns.RR{rr(`example.org. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"`), rr(`example.org. 300 IN TXT "other"`)}
			r.Ns = []dns.RR{rr("example.org. 300 IN NS ns.example.org.")}
			r.Extra = []dns.RR{rr("ns.example.org. 300 IN A 192.0.2.53")}
			r.SetEdns0(1232, false)
		}),
		mk(func(r *dns.Msg) {
			r.Rcode = dns.RcodeNameError
			r.Ns = []dns.RR{rr("example.org. 300 IN SOA ns.example.org. h.example.org. 1 2 3 4 60")}
		}),
		mk(func(r *dns.Msg) { // BADVERS: the high bits of the RCODE are in OPT
			r.SetEdns0(1232, false)
			r.Rcode = dns.RcodeBadVers
		}),
		mk(func(r *dns.Msg) {
			r.Answer = []dns.RR{rr("example.org. 300 IN CNAME spf.example.net."), rr(`spf.example.net. 60 IN TXT "v=spf1 -all"`)}
		}),
		mk(func(r *dns.Msg) { r.Truncated = true }),
		mk(func(r *dns.Msg) { // an answer of another type only: NODATA for TXT
			r.Answer = []dns.RR{rr("example.org. 300 IN A 192.0.2.1")}
			r.Ns = []dns.RR{rr("example.org. 300 IN SOA ns.example.org. h.example.org. 1 2 3 4 60")}
		}),
	}
}

// unpackResponse must read what miekg/dns reads from every message it
// accepts: header, question, answers, and for empty answers the authority
// section and the extended RCODE.
func FuzzUnpackResponse(f *testing.F) {
	for _, s := range responseSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, wire []byte) {
		var want dns.Msg
		if want.Unpack(wire) != nil || len(want.Question) != 1 {
			unpackResponse(wire) // must not panic; may accept what it skips
			return
		}
		got, err := unpackResponse(wire)
		if err != nil {
			t.Fatalf("miekg/dns reads it, unpackResponse does not: %v\n%v", err, &want)
		}
		if got.Id != want.Id || got.Truncated != want.Truncated || !slices.Equal(got.Question, want.Question) {
			t.Fatalf("header or question differs:\n got %v\nwant %v", got, &want)
		}
		if got.Truncated {
			return // asked again over TCP: nothing else is read
		}
		if got.MsgHdr != want.MsgHdr {
			t.Fatalf("header differs:\n got %v\nwant %v", got, &want)
		}
		if fmt.Sprint(got.Answer) != fmt.Sprint(want.Answer) {
			t.Fatalf("answers differ:\n got %v\nwant %v", got.Answer, want.Answer)
		}
		if !answersQuestion(got) && fmt.Sprint(got.Ns) != fmt.Sprint(want.Ns) {
			t.Fatalf("authority differs:\n got %v\nwant %v", got.Ns, want.Ns)
		}
	})
}

// packQuery must pack what NewQuery packs, and decline what it cannot.
func TestPackQuery(t *testing.T) {
	for _, name := range []string{"example.org", "example.org.", "_spf.Google.com", "a.b.c.d.e.f.g.example", strings.Repeat("a", 63) + ".org"} {
		for _, qtype := range []uint16{dns.TypeTXT, dns.TypeA, dns.TypeAAAA, dns.TypeMX} {
			want, err := NewQuery(name, qtype).Pack()
			if err != nil {
				t.Fatal(err)
			}
			got, ok := packQuery(name, qtype)
			if !ok || !bytes.Equal(got, want) {
				t.Errorf("packQuery(%q, %d):\n got %x\nwant %x", name, qtype, got, want)
			}
		}
	}
	for _, name := range []string{"", ".", "a..b", strings.Repeat("a", 64) + ".org", `a\.b.example`, strings.Repeat("abcdefg.", 40)} {
		if _, ok := packQuery(name, dns.TypeTXT); ok {
			t.Errorf("packQuery(%q) packed", name)
		}
	}
}

package spf

import (
	"context"
	"fmt"
	"testing"

	"github.com/miekg/dns"
)

// mapExchanger answers from prebuilt responses: the walker's own cost,
// without a network or a server.
type mapExchanger map[string]*dns.Msg

func (m mapExchanger) Exchange(_ context.Context, q *dns.Msg) (*dns.Msg, error) {
	if r, ok := m[fmt.Sprint(q.Question[0].Name, q.Question[0].Qtype)]; ok {
		return r, nil
	}
	r := new(dns.Msg)
	r.SetRcode(q, dns.RcodeNameError)
	return r, nil
}

func (m mapExchanger) txt(name, text string) {
	q := new(dns.Msg)
	q.SetQuestion(name+".", dns.TypeTXT)
	r := new(dns.Msg)
	r.SetReply(q)
	r.Answer = append(r.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: name + ".", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600}, Txt: []string{text}})
	m[fmt.Sprint(name+".", dns.TypeTXT)] = r
}

// benchZone has n apexes shaped as bench/spfzone -simple makes them: an
// ip4 of their own and two of 16 shared provider trees, four deep.
func benchZone(n int) (mapExchanger, []string) {
	m := mapExchanger{}
	for k := range 16 {
		m.txt(fmt.Sprintf("_spf.p%d.bench.test", k), fmt.Sprintf("v=spf1 include:a._spf.p%d.bench.test include:b._spf.p%d.bench.test ~all", k, k))
		for j, side := range []string{"a", "b"} {
			mid := fmt.Sprintf("%s._spf.p%d.bench.test", side, k)
			m.txt(mid, fmt.Sprintf("v=spf1 ip4:%d.%d.0.0/16 include:leaf.%s -all", 100+k, j, mid))
			m.txt("leaf."+mid, fmt.Sprintf("v=spf1 ip4:%d.%d.0.0/16 include:deep.leaf.%s -all", 100+k, 10+j, mid))
			m.txt("deep.leaf."+mid, fmt.Sprintf("v=spf1 ip6:2001:db8:%x:%x::/64 ip4:%d.%d.0.0/16 -all", k, j, 100+k, 20+j))
		}
	}
	var domains []string
	for i := range n {
		d := fmt.Sprintf("d%05d.bench.test", i)
		m.txt(d, fmt.Sprintf("v=spf1 ip4:44.%d.%d.0/24 include:_spf.p%d.bench.test include:_spf.p%d.bench.test ~all", i/256%256, i%256, i%16, (i/16)%16))
		domains = append(domains, d)
	}
	return m, domains
}

// BenchmarkWalkAll is the walker's CPU per apex (ns/op is per apex).
func BenchmarkWalkAll(b *testing.B) {
	m, domains := benchZone(2000)
	b.ReportAllocs()
	for b.Loop() {
		w := NewWalker(m, Config{})
		for _, r := range w.WalkAll(context.Background(), domains) {
			if r.Status != Complete || len(r.Prefixes) == 0 {
				b.Fatalf("%s: %v %v", r.Domain, r.Status, r.Errors)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(domains)), "ns/apex")
}

// BenchmarkUnpackResponse is one TXT answer as NSD sends it: the record,
// NS in authority, glue and OPT in additional.
func BenchmarkUnpackResponse(b *testing.B) {
	q := NewQuery("d00001.bench.test", dns.TypeTXT)
	r := new(dns.Msg)
	r.SetReply(q)
	rr := func(s string) dns.RR {
		x, err := dns.NewRR(s)
		if err != nil {
			b.Fatal(err)
		}
		return x
	}
	r.Answer = []dns.RR{rr(`d00001.bench.test. 3600 IN TXT "v=spf1 ip4:44.0.1.0/24 include:_spf.p1.bench.test include:_spf.p10.bench.test ~all"`)}
	r.Ns = []dns.RR{rr("bench.test. 3600 IN NS ns.bench.test.")}
	r.Extra = []dns.RR{rr("ns.bench.test. 3600 IN A 127.0.0.1")}
	r.SetEdns0(1232, false)
	wire, err := r.Pack()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := unpackResponse(wire); err != nil {
			b.Fatal(err)
		}
	}
}

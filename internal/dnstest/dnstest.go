// Package dnstest runs an in-process authoritative DNS server for tests,
// on UDP and TCP of one loopback port, with per-name failure modes.
package dnstest

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Behavior is how the server treats queries for one name.
type Behavior int

// Behaviours for Server.Set.
const (
	Normal   Behavior = iota
	ServFail          // answer SERVFAIL
	Refused           // answer REFUSED
	Drop              // never answer: the client times out
	Truncate          // set TC over UDP; answer in full over TCP
)

type key struct {
	name  string
	qtype uint16
}

// Server is a tiny authoritative server over a fixed set of records.
type Server struct {
	Addr string // 127.0.0.1:port, the same port for UDP and TCP

	mu        sync.Mutex
	records   map[key][]dns.RR
	names     map[string]bool
	behaviors map[string]Behavior
	counts    map[key]int
	udp, tcp  int
}

// Start serves the records given as zone-file lines (absolute names, one
// record a line; blank lines and ';' comments are skipped). The server
// stops when the test ends.
func Start(t testing.TB, zone string) *Server {
	t.Helper()
	s := &Server{
		records:   make(map[key][]dns.RR),
		names:     make(map[string]bool),
		behaviors: make(map[string]Behavior),
		counts:    make(map[key]int),
	}
	for _, line := range strings.Split(zone, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("dnstest: %q: %v", line, err)
		}
		s.add(rr)
	}
	pc, ln, err := listenPair()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s.Addr = pc.LocalAddr().String()
	// Shutdown fails on a server that has not started yet, so wait for both.
	var started sync.WaitGroup
	started.Add(2)
	udp := &dns.Server{PacketConn: pc, Handler: s, NotifyStartedFunc: started.Done}
	tcp := &dns.Server{Listener: ln, Handler: s, NotifyStartedFunc: started.Done}
	var wg sync.WaitGroup
	for _, srv := range []*dns.Server{udp, tcp} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = srv.ActivateAndServe()
		}()
	}
	started.Wait()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
		wg.Wait()
	})
	return s
}

// listenPair binds UDP and TCP on the same free loopback port.
func listenPair() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP: %w", lastErr)
}

func (s *Server) add(rr dns.RR) {
	name := strings.ToLower(rr.Header().Name)
	k := key{name, rr.Header().Rrtype}
	s.records[k] = append(s.records[k], rr)
	s.names[name] = true
}

// Add inserts records while the server runs.
func (s *Server) Add(t testing.TB, lines ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range lines {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("dnstest: %q: %v", line, err)
		}
		s.add(rr)
	}
}

// Replace drops every record of name and type and inserts lines instead.
func (s *Server) Replace(t testing.TB, name string, qtype uint16, lines ...string) {
	t.Helper()
	s.mu.Lock()
	delete(s.records, key{strings.ToLower(dns.Fqdn(name)), qtype})
	s.mu.Unlock()
	s.Add(t, lines...)
}

// Set changes how queries for name are treated.
func (s *Server) Set(name string, b Behavior) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.behaviors[strings.ToLower(dns.Fqdn(name))] = b
}

// Count reports how many queries for name and type arrived.
func (s *Server) Count(name string, qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[key{strings.ToLower(dns.Fqdn(name)), qtype}]
}

// Queries reports the number of queries received over UDP and TCP.
func (s *Server) Queries() (udp, tcp int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.udp, s.tcp
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	overUDP := w.LocalAddr().Network() == "udp"

	s.mu.Lock()
	s.counts[key{name, q.Qtype}]++
	if overUDP {
		s.udp++
	} else {
		s.tcp++
	}
	behavior := s.behaviors[name]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	switch {
	case behavior == Drop:
		s.mu.Unlock()
		return
	case behavior == ServFail:
		m.Rcode = dns.RcodeServerFailure
	case behavior == Refused:
		m.Rcode = dns.RcodeRefused
	case behavior == Truncate && overUDP:
		m.Truncated = true
	default:
		m.Answer = append(m.Answer, s.records[key{name, q.Qtype}]...)
		if len(m.Answer) == 0 {
			// Like an authoritative server answering for a name whose
			// CNAME target lies in another zone: the CNAME alone.
			m.Answer = append(m.Answer, s.records[key{name, dns.TypeCNAME}]...)
		}
		if len(m.Answer) == 0 {
			if !s.names[name] {
				m.Rcode = dns.RcodeNameError
			}
			soa, _ := dns.NewRR(". 60 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60")
			m.Ns = append(m.Ns, soa)
		}
	}
	s.mu.Unlock()
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	_ = w.WriteMsg(m)
}

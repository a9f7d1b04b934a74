package spf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Exchanger sends one DNS query and returns the response. The walker only
// talks to DNS through it, so tests can put anything behind it.
type Exchanger interface {
	Exchange(ctx context.Context, query *dns.Msg) (*dns.Msg, error)
}

// QuestionExchanger is an Exchanger that can also ask a bare question
// without a dns.Msg built for it; the walker uses it when it can.
type QuestionExchanger interface {
	ExchangeQuestion(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// EDNSBufferSize is the UDP payload size we advertise: the DNS flag day 2020
// value, small enough to avoid IP fragmentation.
const EDNSBufferSize = 1232

// Client is an Exchanger that asks a list of recursive resolvers over UDP
// with EDNS0, and again over TCP when the UDP answer is truncated.
type Client struct {
	Servers []string      // host:port
	Timeout time.Duration // per attempt
	Retries int           // extra rounds over all servers after the first

	sent  atomic.Int64
	mu    sync.Mutex
	pools map[string]chan *net.UDPConn
	tally map[string]*serverTally
}

// serverTally counts what one server answered.
type serverTally struct {
	noError, nxDomain, servFail, refused, other, failed atomic.Int64

	mu      sync.Mutex
	lastErr string
}

// ServerStats is what one resolver answered since the client was made,
// so that an admin can tell a dead or lying resolver from broken domains.
type ServerStats struct {
	Server    string `json:"server"`
	NoError   int64  `json:"noerror"`
	NXDomain  int64  `json:"nxdomain"`
	ServFail  int64  `json:"servfail"`
	Refused   int64  `json:"refused"`
	Other     int64  `json:"other_rcode"`
	Failed    int64  `json:"no_answer"` // timeouts and network errors
	LastError string `json:"last_error,omitempty"`
}

// Sub returns s minus an earlier reading of the same server.
func (s ServerStats) Sub(old ServerStats) ServerStats {
	s.NoError -= old.NoError
	s.NXDomain -= old.NXDomain
	s.ServFail -= old.ServFail
	s.Refused -= old.Refused
	s.Other -= old.Other
	s.Failed -= old.Failed
	return s
}

// Answers is the total of answers and failures.
func (s ServerStats) Answers() int64 {
	return s.NoError + s.NXDomain + s.ServFail + s.Refused + s.Other + s.Failed
}

func (s ServerStats) String() string {
	out := fmt.Sprintf("%s: %d noerror, %d nxdomain, %d servfail, %d refused, %d other, %d unanswered",
		s.Server, s.NoError, s.NXDomain, s.ServFail, s.Refused, s.Other, s.Failed)
	if s.Failed > 0 && s.LastError != "" {
		out += " (" + s.LastError + ")"
	}
	return out
}

// Stats reports what each server answered, in the order of Servers.
func (c *Client) Stats() []ServerStats {
	out := make([]ServerStats, 0, len(c.Servers))
	for _, server := range c.Servers {
		t := c.serverTally(server)
		t.mu.Lock()
		last := t.lastErr
		t.mu.Unlock()
		out = append(out, ServerStats{Server: server,
			NoError: t.noError.Load(), NXDomain: t.nxDomain.Load(), ServFail: t.servFail.Load(),
			Refused: t.refused.Load(), Other: t.other.Load(), Failed: t.failed.Load(), LastError: last})
	}
	return out
}

func (c *Client) serverTally(server string) *serverTally {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tally == nil {
		c.tally = make(map[string]*serverTally)
	}
	t, ok := c.tally[server]
	if !ok {
		t = new(serverTally)
		c.tally[server] = t
	}
	return t
}

func (t *serverTally) count(resp *dns.Msg, err error) {
	if err != nil {
		t.failed.Add(1)
		t.mu.Lock()
		t.lastErr = err.Error()
		t.mu.Unlock()
		return
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		t.noError.Add(1)
	case dns.RcodeNameError:
		t.nxDomain.Add(1)
	case dns.RcodeServerFailure:
		t.servFail.Add(1)
	case dns.RcodeRefused:
		t.refused.Add(1)
	default:
		t.other.Add(1)
	}
}

// poolSize bounds the idle UDP sockets kept per server: reusing connected
// sockets halves the system calls per query.
const poolSize = 128

// ServersFromResolvConf reads nameserver lines from a resolv.conf.
func ServersFromResolvConf(r io.Reader) ([]string, error) {
	cfg, err := dns.ClientConfigFromReader(r)
	if err != nil {
		return nil, fmt.Errorf("parsing resolv.conf: %w", err)
	}
	var servers []string
	for _, s := range cfg.Servers {
		servers = append(servers, net.JoinHostPort(s, cfg.Port))
	}
	if len(servers) == 0 {
		return nil, errors.New("resolv.conf names no nameserver")
	}
	return servers, nil
}

// SystemServers returns the resolvers of /etc/resolv.conf.
func SystemServers() ([]string, error) {
	f, err := os.Open("/etc/resolv.conf")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ServersFromResolvConf(f)
}

// Sent reports how many queries went out on the wire (UDP and TCP).
func (c *Client) Sent() int64 { return c.sent.Load() }

// Exchange sends a query of one question to the servers, as exchange
// describes.
func (c *Client) Exchange(ctx context.Context, query *dns.Msg) (*dns.Msg, error) {
	if len(query.Question) != 1 {
		return nil, errors.New("a query takes exactly one question")
	}
	wire, err := query.Pack()
	if err != nil {
		return nil, err
	}
	return c.exchange(ctx, wire, query.Question[0], query.Copy)
}

// ExchangeQuestion asks for name and qtype in class IN, as Exchange does
// with NewQuery(name, qtype), but packs the query by hand: every lookup a
// walk makes comes here, and building a dns.Msg only to pack it cost five
// allocations a query.
func (c *Client) ExchangeQuestion(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	wire, ok := packQuery(name, qtype)
	if !ok {
		return c.Exchange(ctx, NewQuery(name, qtype))
	}
	q := dns.Question{Name: name, Qtype: qtype, Qclass: dns.ClassINET}
	return c.exchange(ctx, wire, q, func() *dns.Msg { return NewQuery(name, qtype) })
}

// packQuery packs what NewQuery(name, qtype).Pack() does, ID zero. It
// declines names in presentation format with escapes, and invalid ones,
// which take the general path.
func packQuery(name string, qtype uint16) ([]byte, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 || strings.IndexByte(name, '\\') >= 0 {
		return nil, false
	}
	b := make([]byte, 12, 12+len(name)+2+4+11)
	b[2] = 0x01 // RD
	b[5] = 1    // one question
	b[11] = 1   // one additional record: OPT
	for rest := name; ; {
		label, tail, more := strings.Cut(rest, ".")
		if label == "" || len(label) > 63 {
			return nil, false
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
		if !more {
			break
		}
		rest = tail
	}
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, dns.ClassINET)
	// OPT: root name, type 41, class = UDP payload size, TTL 0 (extended
	// RCODE, version 0, no DO bit), no options.
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, dns.TypeOPT)
	b = binary.BigEndian.AppendUint16(b, EDNSBufferSize)
	b = append(b, 0, 0, 0, 0, 0, 0)
	return b, true
}

// exchange asks each server in turn, for 1+Retries rounds, until one
// gives a usable answer to q. SERVFAIL and REFUSED move on to the next
// server; when all fail, the last such answer is returned so the caller
// can tell a temporary failure from a network error. msg rebuilds the
// query as a message, for the rare retry over TCP.
func (c *Client) exchange(ctx context.Context, wire []byte, q dns.Question, msg func() *dns.Msg) (*dns.Msg, error) {
	if len(c.Servers) == 0 {
		return nil, errors.New("no resolvers configured")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	var lastResp *dns.Msg
	var lastErr error
	for round := 0; round <= c.Retries; round++ {
		for _, server := range c.Servers {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			resp, err := c.exchangeOne(ctx, wire, q, msg, server, timeout)
			if ctx.Err() == nil {
				c.serverTally(server).count(resp, err)
			}
			if err != nil {
				lastErr = err
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				return resp, nil
			}
			lastResp = resp
		}
	}
	if lastResp != nil {
		return lastResp, nil
	}
	return nil, lastErr
}

func (c *Client) exchangeOne(ctx context.Context, wire []byte, q dns.Question, msg func() *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	// A fresh ID per attempt, patched into the packed query.
	// math/rand/v2's generator is ChaCha8, seeded from the system: as
	// unpredictable as dns.Id's crypto/rand at a fraction of the cost.
	id := uint16(rand.Uint32())
	binary.BigEndian.PutUint16(wire, id)
	resp, err := c.exchangeUDP(ctx, wire, q, id, server, timeout)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", server, err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	// miekg/dns does not fall back to TCP by itself.
	c.sent.Add(1)
	m := msg()
	m.Id = id
	tcp := &dns.Client{Net: "tcp", Timeout: timeout}
	resp, _, err = tcp.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", server, err)
	}
	if !answers(resp, q, id) {
		return nil, fmt.Errorf("tcp %s: answer for another question", server)
	}
	return resp, nil
}

// answers reports whether resp answers question q of the query with id.
func answers(resp *dns.Msg, q dns.Question, id uint16) bool {
	return resp.Id == id && resp.Response && len(resp.Question) == 1 &&
		strings.EqualFold(strings.TrimSuffix(resp.Question[0].Name, "."), strings.TrimSuffix(q.Name, ".")) &&
		resp.Question[0].Qtype == q.Qtype && resp.Question[0].Qclass == q.Qclass
}

// exchangeUDP sends the packed query on a pooled connected socket and
// reads until the answer to it arrives; late answers to earlier queries
// are discarded.
func (c *Client) exchangeUDP(ctx context.Context, wire []byte, q dns.Question, id uint16, server string, timeout time.Duration) (*dns.Msg, error) {
	pool := c.pool(server)
	var conn *net.UDPConn
	select {
	case conn = <-pool:
	default:
		var d net.Dialer
		nc, err := d.DialContext(ctx, "udp", server)
		if err != nil {
			return nil, err
		}
		conn = nc.(*net.UDPConn)
	}
	reuse := false
	defer func() {
		if reuse {
			select {
			case pool <- conn:
				return
			default:
			}
		}
		conn.Close()
	}()
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// Writing a datagram does not block: the read deadline is enough.
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	}
	defer stop()
	c.sent.Add(1)
	if _, err := conn.Write(wire); err != nil {
		return nil, err
	}
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	buf := *bp
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		// Check the ID before unpacking: a late answer costs nothing.
		if n < 12 || binary.BigEndian.Uint16(buf) != id {
			continue
		}
		resp, err := unpackResponse(buf[:n])
		if err != nil || !answers(resp, q, id) {
			continue // garbage or a late answer to an earlier query
		}
		reuse = stop()
		return resp, nil
	}
}

// unpackResponse reads what the walker uses of a response: the header,
// the question and the answer section; for an answer without a record of
// the asked type or a CNAME also the authority section (its SOA gives the
// negative-caching TTL) and the additional one (an OPT record's extended
// RCODE). A positive answer's
// authority and glue are skipped: unpacking them took a third of the time
// spent on each response, and they are the server's, not the question's.
func unpackResponse(wire []byte) (*dns.Msg, error) {
	if len(wire) < 12 {
		return nil, errors.New("short DNS message")
	}
	m := new(dns.Msg)
	m.Id = binary.BigEndian.Uint16(wire)
	flags := binary.BigEndian.Uint16(wire[2:])
	m.Response = flags&(1<<15) != 0
	m.Opcode = int(flags>>11) & 0xf
	m.Authoritative = flags&(1<<10) != 0
	m.Truncated = flags&(1<<9) != 0
	m.RecursionDesired = flags&(1<<8) != 0
	m.RecursionAvailable = flags&(1<<7) != 0
	m.Zero = flags&(1<<6) != 0
	m.AuthenticatedData = flags&(1<<5) != 0
	m.CheckingDisabled = flags&(1<<4) != 0
	m.Rcode = int(flags & 0xf)
	qd, an := int(binary.BigEndian.Uint16(wire[4:])), int(binary.BigEndian.Uint16(wire[6:]))
	ns, ar := int(binary.BigEndian.Uint16(wire[8:])), int(binary.BigEndian.Uint16(wire[10:]))
	off := 12
	// Counts that promise more than the message holds are read as far as
	// it goes, and a message cut at a field boundary is read as miekg/dns
	// reads it; anything else malformed is an error.
	for range qd {
		if off == len(wire) {
			break
		}
		name, next, err := dns.UnpackDomainName(wire, off)
		if err != nil {
			return nil, fmt.Errorf("bad question name: %w", err)
		}
		q := dns.Question{Name: name}
		for _, field := range []*uint16{&q.Qtype, &q.Qclass} {
			if next == len(wire) {
				break
			}
			if next+2 > len(wire) {
				return nil, errors.New("bad question")
			}
			*field = binary.BigEndian.Uint16(wire[next:])
			next += 2
		}
		m.Question = append(m.Question, q)
		off = next
	}
	if m.Truncated {
		return m, nil // asked again over TCP: the rest may be cut anywhere
	}
	section := func(n int) ([]dns.RR, error) {
		var rrs []dns.RR
		for range n {
			rr, next, err := dns.UnpackRR(wire, off)
			if err != nil {
				return nil, err
			}
			if next == off {
				break
			}
			off = next
			rrs = append(rrs, rr)
		}
		return rrs, nil
	}
	var err error
	if m.Answer, err = section(an); err != nil {
		return nil, err
	}
	if answersQuestion(m) {
		return m, nil
	}
	if m.Ns, err = section(ns); err != nil {
		return nil, err
	}
	if m.Extra, err = section(ar); err != nil {
		return nil, err
	}
	if opt := m.IsEdns0(); opt != nil {
		m.Rcode |= opt.ExtendedRcode()
	}
	return m, nil
}

// answersQuestion reports whether m's answer section holds a record of
// the asked type or a CNAME: an answer whose authority section nobody
// reads.
func answersQuestion(m *dns.Msg) bool {
	if len(m.Question) != 1 {
		return len(m.Answer) > 0
	}
	for _, rr := range m.Answer {
		if t := rr.Header().Rrtype; t == m.Question[0].Qtype || t == dns.TypeCNAME {
			return true
		}
	}
	return false
}

// readBuffers recycles UDP read buffers; answers are at most what we
// advertise with EDNS0, 4 KiB leaves room for servers that ignore it.
var readBuffers = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

func (c *Client) pool(server string) chan *net.UDPConn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pools == nil {
		c.pools = make(map[string]chan *net.UDPConn)
	}
	p, ok := c.pools[server]
	if !ok {
		p = make(chan *net.UDPConn, poolSize)
		c.pools[server] = p
	}
	return p
}

// Close releases the pooled sockets.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pools {
		for len(p) > 0 {
			(<-p).Close()
		}
	}
}

// NewQuery builds a recursive query with EDNS0. Its ID is left zero:
// Client sets a fresh one on every attempt (dns.Msg.SetQuestion would draw
// one from crypto/rand here for nothing).
func NewQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.Opcode = dns.OpcodeQuery
	m.Question = []dns.Question{{Name: dns.Fqdn(name), Qtype: qtype, Qclass: dns.ClassINET}}
	m.RecursionDesired = true
	m.SetEdns0(EDNSBufferSize, false)
	return m
}

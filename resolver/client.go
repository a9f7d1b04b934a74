package resolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
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

// ParseServer normalises a resolver address: "192.0.2.1", "192.0.2.1:5353",
// "2001:db8::1", "[2001:db8::1]:5353". Port 53 is the default.
func ParseServer(s string) (string, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return net.JoinHostPort(a.String(), "53"), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" {
		// A host name as resolver would need a resolver to find it.
		return "", fmt.Errorf("invalid resolver %q: want an IP address, optionally with :port", s)
	}
	return ap.String(), nil
}

// Sent reports how many queries went out on the wire (UDP and TCP).
func (c *Client) Sent() int64 { return c.sent.Load() }

// Exchange asks each server in turn, for 1+Retries rounds, until one gives a
// usable answer. SERVFAIL and REFUSED move on to the next server; when all
// fail, the last such answer is returned so the caller can tell a temporary
// failure from a network error.
func (c *Client) Exchange(ctx context.Context, query *dns.Msg) (*dns.Msg, error) {
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
			resp, err := c.exchangeOne(ctx, query, server, timeout)
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

func (c *Client) exchangeOne(ctx context.Context, query *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
	q := query.Copy()
	q.Id = dns.Id()
	resp, err := c.exchangeUDP(ctx, q, server, timeout)
	if err != nil {
		return nil, fmt.Errorf("udp %s: %w", server, err)
	}
	if !resp.Truncated {
		return resp, nil
	}
	// miekg/dns does not fall back to TCP by itself.
	c.sent.Add(1)
	tcp := &dns.Client{Net: "tcp", Timeout: timeout}
	resp, _, err = tcp.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil, fmt.Errorf("tcp %s: %w", server, err)
	}
	if !answers(resp, q) {
		return nil, fmt.Errorf("tcp %s: answer for another question", server)
	}
	return resp, nil
}

func answers(resp, q *dns.Msg) bool {
	return resp.Id == q.Id && resp.Response && len(resp.Question) == 1 &&
		strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) &&
		resp.Question[0].Qtype == q.Question[0].Qtype && resp.Question[0].Qclass == q.Question[0].Qclass
}

// exchangeUDP sends q on a pooled connected socket and reads until the
// answer to q arrives; late answers to earlier queries are discarded.
func (c *Client) exchangeUDP(ctx context.Context, q *dns.Msg, server string, timeout time.Duration) (*dns.Msg, error) {
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
	wire, err := q.Pack()
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
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
		resp := new(dns.Msg)
		if resp.Unpack(buf[:n]) != nil || !answers(resp, q) {
			continue // garbage or a late answer to an earlier query
		}
		reuse = stop()
		return resp, nil
	}
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

// NewQuery builds a recursive query with EDNS0.
func NewQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(EDNSBufferSize, false)
	return m
}

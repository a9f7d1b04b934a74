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

	sent atomic.Int64
}

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
	udp := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: EDNSBufferSize}
	resp, err := c.do(ctx, udp, query, server)
	if err != nil {
		return nil, err
	}
	if !resp.Truncated {
		return resp, nil
	}
	// miekg/dns does not fall back to TCP by itself.
	tcp := &dns.Client{Net: "tcp", Timeout: timeout}
	return c.do(ctx, tcp, query, server)
}

func (c *Client) do(ctx context.Context, client *dns.Client, query *dns.Msg, server string) (*dns.Msg, error) {
	c.sent.Add(1)
	q := query.Copy()
	q.Id = dns.Id()
	resp, _, err := client.ExchangeContext(ctx, q, server)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", client.Net, server, err)
	}
	if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, q.Question[0].Name) ||
		resp.Question[0].Qtype != q.Question[0].Qtype {
		return nil, fmt.Errorf("%s %s: answer for another question", client.Net, server)
	}
	return resp, nil
}

// NewQuery builds a recursive query with EDNS0.
func NewQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(EDNSBufferSize, false)
	return m
}

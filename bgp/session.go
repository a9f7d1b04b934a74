package bgp

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type rawConn = syscall.RawConn

// session is one neighbor's side of the speaker: it dials the neighbor
// and takes the neighbor's connections, resolves collisions between the
// two as RFC 4271 (6.8) says, and runs the established session.
type session struct {
	sp       *Speaker
	n        Neighbor
	addr     netip.Addr
	port     int
	local    netip.Addr // the address to dial from; invalid: any
	ebgp     bool
	ttl      int // 0: the system's default
	incoming chan net.Conn
	wake     chan struct{} // what is announced changed

	mu          sync.Mutex
	state       string
	lastErr     string
	established bool
	sent        uint64 // the Speaker's outVersion last written
	failures    int
	refuseUntil time.Time
}

func newSession(sp *Speaker, n Neighbor) (*session, error) {
	a, err := netip.ParseAddr(n.Address)
	if err != nil {
		return nil, fmt.Errorf("bgp: neighbor %q: not an address", n.Address)
	}
	s := &session{sp: sp, n: n, addr: a.Unmap(), port: int(n.Port), ebgp: n.ASN != sp.cfg.ASN,
		incoming: make(chan net.Conn, maxIncomingWait), wake: make(chan struct{}, 1), state: "idle"}
	if s.port == 0 {
		s.port = defaultBGPPort
	}
	if n.LocalAddress != "" {
		if s.local, err = netip.ParseAddr(n.LocalAddress); err != nil {
			return nil, fmt.Errorf("bgp: neighbor %s: local address %q: not an address", n.Address, n.LocalAddress)
		}
	}
	switch {
	case n.Multihop > 0:
		s.ttl = int(min(n.Multihop, 255))
	case s.ebgp:
		s.ttl = 1 // directly connected, as bgpd and RFC 4271 have it
	}
	if len(n.Password) > 80 {
		return nil, fmt.Errorf("bgp: neighbor %s: password longer than 80 bytes", n.Address)
	}
	return s, nil
}

func (s *session) name() string { return s.addr.String() }

func (s *session) setState(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

func (s *session) status() (state, lastErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.lastErr
}

func (s *session) isEstablished() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.established
}

func (s *session) sentVersion() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func (s *session) refusing() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Until(s.refuseUntil)
}

func (s *session) wakeWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// noteErr keeps err as the neighbor's last error, for show neighbors,
// and logs it.
func (s *session) noteErr(err error) {
	text := describe(err)
	s.mu.Lock()
	s.lastErr = time.Now().UTC().Format("2006-01-02T15:04:05Z") + " " + text
	s.mu.Unlock()
	s.sp.logWarn("msg", "bgp: "+text, "neighbor", s.name())
}

// received is a NOTIFICATION the neighbor sent.
type received struct{ code, sub uint8 }

func (r received) Error() string { return "received notification: " + notificationText(r.code, r.sub) }

func describe(err error) string {
	var ne *notifyError
	var r received
	switch {
	case errors.As(err, &ne):
		return "sent notification: " + ne.Error()
	case errors.As(err, &r):
		return r.Error()
	case errors.Is(err, io.EOF):
		return "connection closed by the neighbor"
	}
	return "connection: " + err.Error()
}

// conn is one TCP connection to the neighbor, from the OPEN on.
type conn struct {
	net.Conn
	br          *bufio.Reader
	hdr         [headerLen]byte
	body        []byte
	open        openMsg
	outgoing    bool
	established atomic.Bool
	wmu         sync.Mutex
	done        chan struct{}
	closeOnce   sync.Once
	stop        func() bool // the context hook that closes it
}

func newConn(ctx context.Context, c net.Conn, outgoing bool) *conn {
	cn := &conn{Conn: c, br: bufio.NewReaderSize(c, 4*maxMsgLen), body: make([]byte, maxMsgLen), outgoing: outgoing, done: make(chan struct{})}
	cn.stop = context.AfterFunc(ctx, cn.close)
	return cn
}

// read reads one message; the body stays valid until the next read.
func (c *conn) read() (uint8, []byte, error) {
	if _, err := io.ReadFull(c.br, c.hdr[:]); err != nil {
		return 0, nil, err
	}
	typ, n, err := parseHeader(c.hdr[:])
	if err != nil {
		return 0, nil, err
	}
	body := c.body[:n-headerLen]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

// exchange sends m and reads the neighbor's next message, which must be
// of type want (OPEN in OpenSent, KEEPALIVE in OpenConfirm): a
// NOTIFICATION ends the session with the neighbor's reason, anything
// else is an FSM error.
func (c *conn) exchange(m []byte, want uint8) ([]byte, error) {
	if err := c.write(m); err != nil {
		return nil, err
	}
	typ, body, err := c.read()
	switch {
	case err != nil:
		return nil, err
	case typ == msgNotification:
		return nil, received{body[0], body[1]}
	case typ != want:
		sub := uint8(1) // in OpenSent
		if want == msgKeepalive {
			sub = 2 // in OpenConfirm
		}
		return nil, notify(errFSM, sub, fmt.Sprintf("message type %d while opening", typ))
	}
	return body, nil
}

const writeTimeout = holdTime

func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.Conn.Write(b)
	return err
}

// shutdown sends the NOTIFICATION err calls for, if any, and closes.
func (c *conn) shutdown(err error) {
	var ne *notifyError
	if errors.As(err, &ne) {
		c.wmu.Lock()
		notifyOn(c.Conn, ne)
		c.wmu.Unlock()
	}
	c.close()
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.Conn.Close()
		if c.stop != nil {
			c.stop()
		}
	})
}

// run is the session's loop: one connection at a time carries the
// session, others are resolved or refused.
func (s *session) run(ctx context.Context) {
	defer s.sp.wg.Done()
	opens := make(chan *conn)
	ended := make(chan *conn)
	// A little jitter, so two speakers started together do not always
	// collide.
	dial := time.NewTimer(time.Duration(rand.Int64N(int64(time.Second))))
	defer dial.Stop()
	var cur *conn
	pending := 0
	retry := func() {
		s.mu.Lock()
		s.failures++
		d := min(firstRetry<<min(s.failures-1, 8), maxRetry)
		d = max(d, time.Until(s.refuseUntil))
		if s.state != "idle" {
			s.state = "active"
		}
		s.mu.Unlock()
		dial.Reset(d)
	}
	for {
		select {
		case <-ctx.Done():
			if cur != nil {
				cur.shutdown(notify(errCease, ceaseShutdown, ""))
			}
			return // Speaker.Wait waits for the rest
		case c := <-s.incoming:
			switch {
			case s.refusing() > 0:
				refuse(c, notify(errCease, ceaseRejected, ""))
			case cur != nil && cur.established.Load():
				// RFC 4271 6.8: a connection that collides with an
				// established session is closed.
				refuse(c, notify(errCease, ceaseCollision, ""))
			default:
				pending++
				s.sp.wg.Add(1)
				go s.handshake(ctx, newConn(ctx, c, false), opens)
			}
		case <-dial.C:
			if wait := s.refusing(); wait > 0 {
				dial.Reset(wait)
				continue
			}
			if cur != nil || pending > 0 {
				continue
			}
			pending++
			s.sp.wg.Add(1)
			go func() {
				c, err := s.dial(ctx)
				if err != nil {
					defer s.sp.wg.Done()
					if ctx.Err() == nil {
						s.noteErr(err)
					}
					select {
					case opens <- nil:
					case <-ctx.Done():
					}
					return
				}
				s.handshake(ctx, newConn(ctx, c, true), opens)
			}()
		case c := <-opens:
			pending--
			if c == nil {
				if cur == nil && pending == 0 {
					retry()
				}
				continue
			}
			if cur != nil {
				// Two connections got as far as OPEN: keep the one the
				// speaker with the higher BGP identifier opened.
				if cur.established.Load() || s.keepFirst(cur, c) {
					c.shutdown(notify(errCease, ceaseCollision, ""))
					continue
				}
				cur.shutdown(notify(errCease, ceaseCollision, ""))
			}
			cur = c
			s.sp.wg.Add(1)
			go s.serve(ctx, c, ended)
		case c := <-ended:
			if c == cur {
				cur = nil
				if pending == 0 {
					retry()
				}
			}
		}
	}
}

// keepFirst decides a collision between a and b (RFC 4271 6.8).
func (s *session) keepFirst(a, b *conn) bool {
	ours := binary.BigEndian.Uint32(s.sp.routerID.AsSlice())
	id4 := a.open.id.As4()
	theirs := binary.BigEndian.Uint32(id4[:])
	return (ours > theirs) == a.outgoing
}

// refuse turns a connection away with e.
func refuse(c net.Conn, e *notifyError) {
	notifyOn(c, e)
	c.Close()
}

// notifyOn sends e, giving a neighbor that does not read a second.
func notifyOn(c net.Conn, e *notifyError) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write(marshalNotification(e))
}

// dial connects to the neighbor: plain TCP, the TCP-MD5 key and the TTL
// set before the SYN.
func (s *session) dial(ctx context.Context) (net.Conn, error) {
	s.setState("connect")
	d := net.Dialer{Timeout: dialTimeout, Control: func(_, _ string, c rawConn) error {
		return s.sockopts(c)
	}}
	if s.local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: s.local.AsSlice()}
	}
	d.SetMultipathTCP(false)
	return d.DialContext(ctx, "tcp", net.JoinHostPort(s.addr.String(), strconv.Itoa(s.port)))
}

func (s *session) sockopts(c rawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if s.n.Password != "" {
			serr = setMD5(int(fd), s.addr, s.n.Password)
		}
		if serr == nil && s.ttl > 0 {
			serr = setTTL(int(fd), s.addr, s.ttl)
		}
	})
	return errors.Join(err, serr)
}

// handshake sends OPEN and reads the neighbor's, then hands the
// connection to run.
func (s *session) handshake(ctx context.Context, c *conn, opens chan<- *conn) {
	defer s.sp.wg.Done()
	err := s.openConn(c)
	if err != nil {
		if ctx.Err() == nil {
			s.noteErr(err)
		}
		c.shutdown(err)
		c = nil
	}
	select {
	case opens <- c:
	case <-ctx.Done():
		if c != nil {
			c.close()
		}
	}
}

func (s *session) openConn(c *conn) error {
	if !c.outgoing && s.ttl > 0 {
		if tc, ok := c.Conn.(*net.TCPConn); ok {
			if rc, err := tc.SyscallConn(); err == nil {
				rc.Control(func(fd uintptr) { setTTL(int(fd), s.addr, s.ttl) })
			}
		}
	}
	c.SetDeadline(time.Now().Add(openTimeout))
	if !s.isEstablished() {
		s.setState("opensent")
	}
	body, err := c.exchange(marshalOpen(s.sp.cfg.ASN, uint16(holdTime/time.Second), s.sp.routerID), msgOpen)
	if err != nil {
		return err
	}
	o, err := parseOpen(body)
	if err != nil {
		return err
	}
	if o.as != s.n.ASN {
		return &notifyError{code: errOpen, sub: subBadPeerAS, why: fmt.Sprintf("AS %d, expected %d", o.as, s.n.ASN)}
	}
	if !s.ebgp && o.id == s.sp.routerID {
		return notify(errOpen, subBadID, "the neighbor has spfd's router id")
	}
	c.open = o
	return nil
}

// serve runs a connection from OPEN to its end: KEEPALIVEs, then the
// established session, read and applied one message at a time.
func (s *session) serve(ctx context.Context, c *conn, ended chan<- *conn) {
	defer s.sp.wg.Done()
	err := s.runEstablished(ctx, c)
	if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		s.noteErr(err)
	}
	c.shutdown(err)
	select {
	case ended <- c:
	case <-ctx.Done():
	}
}

func (s *session) runEstablished(ctx context.Context, c *conn) error {
	hold := min(holdTime, time.Duration(c.open.hold)*time.Second)
	if !s.isEstablished() {
		s.setState("openconfirm")
	}
	if _, err := c.exchange(marshalKeepalive(), msgKeepalive); err != nil {
		return err
	}
	c.SetDeadline(time.Time{})
	c.established.Store(true)
	s.mu.Lock()
	s.established, s.state, s.failures, s.sent = true, "established", 0, 0
	s.mu.Unlock()
	s.sp.sessionUp(s.name())
	s.sp.logInfo("msg", "bgp session up", "neighbor", s.name())
	writerDone := make(chan error, 1)
	s.sp.wg.Add(1)
	go func() {
		defer s.sp.wg.Done()
		werr := s.writer(c, hold)
		if werr != nil {
			c.close() // the reader stops at once
		}
		writerDone <- werr
	}()
	err := s.reader(c, hold)
	c.shutdown(err)
	if werr := <-writerDone; werr != nil && errors.Is(err, net.ErrClosed) {
		err = werr // the writer failed first
	}
	s.mu.Lock()
	s.established, s.state = false, "active"
	s.mu.Unlock()
	held := s.sp.sessionDown(s.name())
	if ctx.Err() == nil {
		s.sp.logWarn("msg", "bgp session down", "neighbor", s.name(), "error", describe(err),
			"routes-held", held, "hold", s.sp.cfg.Hold)
	}
	return err
}

// reader applies the neighbor's messages until the connection ends.
func (s *session) reader(c *conn, hold time.Duration) error {
	var u update
	for {
		if hold > 0 {
			c.SetReadDeadline(time.Now().Add(hold))
		}
		typ, body, err := c.read()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return notify(errHoldTimer, 0, "")
			}
			return err
		}
		switch typ {
		case msgKeepalive, msgRouteRefresh:
		case msgUpdate:
			if err := parseUpdate(body, &u); err != nil {
				return err
			}
			if !c.open.ipv6 || !c.open.ipv4 {
				u.announced = slices.DeleteFunc(u.announced, func(p netip.Prefix) bool {
					return p.Addr().Is4() && !c.open.ipv4 || !p.Addr().Is4() && !c.open.ipv6
				})
			}
			if err := s.sp.apply(s.name(), &u, s.n.MaxPrefix); err != nil {
				var ne *notifyError
				if errors.As(err, &ne) && ne.code == errCease && ne.sub == ceaseMaxPrefix {
					s.mu.Lock()
					s.refuseUntil, s.state = time.Now().Add(maxPrefixIdle), "idle"
					s.mu.Unlock()
				}
				return err
			}
		case msgNotification:
			return received{body[0], body[1]}
		default:
			return notify(errFSM, 3, "unexpected OPEN")
		}
	}
}

// maxPrefixData is the Cease's data (RFC 4486): the family of p, the
// route past the limit, and the limit.
func maxPrefixData(p netip.Prefix, max uint32) []byte {
	afi := uint16(afiIPv4)
	if !p.Addr().Is4() {
		afi = afiIPv6
	}
	b := binary.BigEndian.AppendUint16(nil, afi)
	b = append(b, safiUnicast)
	return binary.BigEndian.AppendUint32(b, max)
}

// writer sends KEEPALIVEs, and what changed in the announced lists each
// time it is woken and the socket takes it. It works from the current
// lists, not a queue of changes, so what it holds is bounded by them.
func (s *session) writer(c *conn, hold time.Duration) error {
	var tick <-chan time.Time
	if hold > 0 {
		t := time.NewTicker(hold / 3)
		defer t.Stop()
		tick = t.C
	}
	pa := s.attrs(c)
	sent := make(map[netip.Prefix]uint32)
	var version uint64
	first := true
	for {
		s.sp.mu.Lock()
		out, v := s.sp.out, s.sp.outVersion
		s.sp.mu.Unlock()
		if v != version || first {
			for _, m := range s.changes(pa, c.open, sent, out) {
				if err := c.write(m); err != nil {
					return err
				}
			}
			if first {
				// End-of-RIB for each family (RFC 4724): the table is
				// complete.
				first = false
				for _, m := range endOfRIB(c.open) {
					if err := c.write(m); err != nil {
						return err
					}
				}
			}
			version = v
			s.mu.Lock()
			s.sent = v
			s.mu.Unlock()
			s.sp.mu.Lock()
			s.sp.outDone.Broadcast()
			s.sp.mu.Unlock()
		}
		select {
		case <-c.done:
			return nil
		case <-s.wake:
		case <-tick:
			if err := c.write(marshalKeepalive()); err != nil {
				return err
			}
		}
	}
}

// attrs are the path attributes for this connection: next hops from its
// local address.
func (s *session) attrs(c *conn) pathAttrs {
	pa := pathAttrs{localAS: s.sp.cfg.ASN, ebgp: s.ebgp, as4: c.open.as4, nextHop4: s.sp.routerID}
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	local := ap.Addr().Unmap()
	if local.Is4() {
		pa.nextHop4 = local
		pa.nextHop6 = netip.AddrFrom16(local.As16()) // IPv4-mapped
	} else {
		pa.nextHop6 = local
	}
	return pa
}

// changes returns the UPDATEs that take the neighbor from sent to out,
// and records them in sent.
func (s *session) changes(pa pathAttrs, o openMsg, sent, out map[netip.Prefix]uint32) [][]byte {
	ok := func(p netip.Prefix) bool { return p.Addr().Is4() && o.ipv4 || !p.Addr().Is4() && o.ipv6 }
	type group struct {
		v4        bool
		community uint32
	}
	adds := make(map[group][]netip.Prefix)
	var del4, del6 []netip.Prefix
	for p := range sent {
		if _, keep := out[p]; !keep {
			if p.Addr().Is4() {
				del4 = append(del4, p)
			} else {
				del6 = append(del6, p)
			}
			delete(sent, p)
		}
	}
	for p, c := range out {
		if sent[p] == c || !ok(p) {
			continue
		}
		g := group{p.Addr().Is4(), c}
		adds[g] = append(adds[g], p)
		sent[p] = c
	}
	ub := updateBuilder{pa: pa}
	sortPrefixes := func(ps []netip.Prefix) []netip.Prefix {
		slices.SortFunc(ps, func(a, b netip.Prefix) int { return cmp.Or(a.Addr().Compare(b.Addr()), a.Bits()-b.Bits()) })
		return ps
	}
	ub.withdraw(sortPrefixes(del4))
	ub.withdraw(sortPrefixes(del6))
	groups := slices.Collect(maps.Keys(adds))
	slices.SortFunc(groups, func(a, b group) int {
		if a.v4 != b.v4 {
			if a.v4 {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.community, b.community)
	})
	for _, g := range groups {
		ub.announce(sortPrefixes(adds[g]), g.community)
	}
	return ub.msgs
}

// endOfRIB returns the End-of-RIB markers for the families in use.
func endOfRIB(o openMsg) [][]byte {
	var out [][]byte
	if o.ipv4 {
		out = append(out, marshalUpdate(nil, nil, nil))
	}
	if o.ipv6 {
		v := binary.BigEndian.AppendUint16(nil, afiIPv6)
		v = append(v, safiUnicast)
		out = append(out, marshalUpdate(nil, appendAttr(nil, flagOptional, attrMPUnreach, v), nil))
	}
	return out
}

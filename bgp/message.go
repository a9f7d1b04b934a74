package bgp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// BGP-4 messages (RFC 4271) as spfd needs them: OPEN with the
// multiprotocol (RFC 4760) and four-octet AS (RFC 6793) capabilities,
// UPDATE with IPv4 NLRI, MP_REACH/MP_UNREACH for IPv6 and COMMUNITIES
// (RFC 1997), NOTIFICATION and KEEPALIVE. Everything a neighbor sends is
// bounds-checked here before it is believed.

const (
	msgOpen         = 1
	msgUpdate       = 2
	msgNotification = 3
	msgKeepalive    = 4
	msgRouteRefresh = 5

	headerLen = 19
	maxMsgLen = 4096 // no extended messages (RFC 8654) are offered
)

// NOTIFICATION error codes and the subcodes spfd sends.
const (
	errHeader       = 1
	errOpen         = 2
	errUpdate       = 3
	errHoldTimer    = 4
	errFSM          = 5
	errCease        = 6
	subBadLength    = 2 // message header
	subBadType      = 3
	subBadPeerAS    = 2 // open
	subBadID        = 3
	subBadHold      = 6
	subUnsupVersion = 1
	subAttrList     = 1 // update: malformed attribute list
	subBadNetwork   = 10
	ceaseMaxPrefix  = 1
	ceaseShutdown   = 2
	ceaseRejected   = 5
	ceaseCollision  = 7
)

// Path attribute type codes and flags.
const (
	attrOrigin      = 1
	attrASPath      = 2
	attrNextHop     = 3
	attrLocalPref   = 5
	attrCommunities = 8
	attrMPReach     = 14
	attrMPUnreach   = 15

	flagOptional   = 0x80
	flagTransitive = 0x40
	flagExtended   = 0x10
)

// AFI and SAFI values, and AS_TRANS for a four-octet AS in the two-octet
// field.
const (
	afiIPv4     = 1
	afiIPv6     = 2
	safiUnicast = 1
	asTrans     = 23456
)

// notifyError is a fault that ends the session with a NOTIFICATION.
type notifyError struct {
	code, sub uint8
	data      []byte
	why       string
}

func (e *notifyError) Error() string {
	s := notificationText(e.code, e.sub)
	if e.why != "" {
		s += ": " + e.why
	}
	return s
}

func notify(code, sub uint8, why string) *notifyError {
	return &notifyError{code: code, sub: sub, why: why}
}

// notificationText names a NOTIFICATION as RFC 4271 and RFC 4486 do.
func notificationText(code, sub uint8) string {
	codes := map[uint8]string{errHeader: "message header error", errOpen: "open message error",
		errUpdate: "update message error", errHoldTimer: "hold timer expired",
		errFSM: "finite state machine error", errCease: "cease"}
	subs := map[[2]uint8]string{
		{errHeader, 1}: "connection not synchronized", {errHeader, subBadLength}: "bad message length",
		{errHeader, subBadType}:    "bad message type",
		{errOpen, subUnsupVersion}: "unsupported version number", {errOpen, subBadPeerAS}: "bad peer AS",
		{errOpen, subBadID}: "bad BGP identifier", {errOpen, 4}: "unsupported optional parameter",
		{errOpen, subBadHold}: "unacceptable hold time", {errOpen, 7}: "unsupported capability",
		{errUpdate, subAttrList}: "malformed attribute list", {errUpdate, subBadNetwork}: "invalid network field",
		{errCease, ceaseMaxPrefix}: "maximum number of prefixes reached", {errCease, ceaseShutdown}: "administrative shutdown",
		{errCease, 3}: "peer de-configured", {errCease, 4}: "administrative reset",
		{errCease, ceaseRejected}: "connection rejected", {errCease, 6}: "other configuration change",
		{errCease, ceaseCollision}: "connection collision resolution", {errCease, 8}: "out of resources",
	}
	name, ok := codes[code]
	if !ok {
		name = fmt.Sprintf("error code %d", code)
	}
	if s, ok := subs[[2]uint8{code, sub}]; ok {
		return name + ", " + s
	}
	if sub != 0 {
		return fmt.Sprintf("%s, subcode %d", name, sub)
	}
	return name
}

// appendHeader appends a message header for a body of n bytes.
func appendHeader(b []byte, typ uint8, n int) []byte {
	for range 16 {
		b = append(b, 0xff)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(headerLen+n))
	return append(b, typ)
}

// parseHeader checks a message header and returns the message's type and
// whole length.
func parseHeader(h []byte) (typ uint8, n int, err error) {
	for _, x := range h[:16] {
		if x != 0xff {
			return 0, 0, notify(errHeader, 1, "bad marker")
		}
	}
	n = int(binary.BigEndian.Uint16(h[16:18]))
	typ = h[18]
	min := headerLen
	switch typ {
	case msgOpen:
		min = headerLen + 10
	case msgUpdate:
		min = headerLen + 4
	case msgNotification:
		min = headerLen + 2
	case msgKeepalive, msgRouteRefresh:
	default:
		return 0, 0, &notifyError{code: errHeader, sub: subBadType, data: []byte{typ}}
	}
	if n < min || n > maxMsgLen || (typ == msgKeepalive && n != headerLen) {
		return 0, 0, &notifyError{code: errHeader, sub: subBadLength, data: binary.BigEndian.AppendUint16(nil, uint16(n))}
	}
	return typ, n, nil
}

// openMsg is an OPEN's content.
type openMsg struct {
	as       uint32 // the four-octet AS when the capability says it
	hold     uint16
	id       netip.Addr
	as4      bool // four-octet AS capability
	ipv4     bool // multiprotocol IPv4 unicast (assumed without any MP capability)
	ipv6     bool
	mpListed bool
}

func marshalOpen(as uint32, hold uint16, id netip.Addr) []byte {
	var caps []byte
	for _, afi := range []uint16{afiIPv4, afiIPv6} {
		caps = append(caps, 1, 4) // multiprotocol
		caps = binary.BigEndian.AppendUint16(caps, afi)
		caps = append(caps, 0, safiUnicast)
	}
	caps = append(caps, 65, 4) // four-octet AS
	caps = binary.BigEndian.AppendUint32(caps, as)
	body := []byte{4}
	as2 := uint16(as)
	if as > 0xffff {
		as2 = asTrans
	}
	body = binary.BigEndian.AppendUint16(body, as2)
	body = binary.BigEndian.AppendUint16(body, hold)
	id4 := id.As4()
	body = append(body, id4[:]...)
	body = append(body, byte(2+len(caps)), 2, byte(len(caps)))
	body = append(body, caps...)
	return append(appendHeader(nil, msgOpen, len(body)), body...)
}

func parseOpen(body []byte) (openMsg, error) {
	var o openMsg
	if len(body) < 10 {
		return o, notify(errHeader, subBadLength, "short OPEN")
	}
	if body[0] != 4 {
		return o, &notifyError{code: errOpen, sub: subUnsupVersion, data: []byte{0, 4}}
	}
	o.as = uint32(binary.BigEndian.Uint16(body[1:3]))
	o.hold = binary.BigEndian.Uint16(body[3:5])
	o.id = netip.AddrFrom4([4]byte(body[5:9]))
	if o.hold == 1 || o.hold == 2 {
		return o, notify(errOpen, subBadHold, fmt.Sprintf("hold time %d", o.hold))
	}
	if o.id.As4() == [4]byte{} {
		return o, notify(errOpen, subBadID, "BGP identifier 0.0.0.0")
	}
	params := body[10:]
	if int(body[9]) != len(params) {
		return o, notify(errOpen, 0, "optional parameters' length")
	}
	for len(params) > 0 {
		if len(params) < 2 || int(params[1]) > len(params)-2 {
			return o, notify(errOpen, 0, "optional parameter overruns the message")
		}
		typ, val := params[0], params[2:2+int(params[1])]
		params = params[2+int(params[1]):]
		if typ != 2 {
			continue // only capabilities mean anything here
		}
		for len(val) > 0 {
			if len(val) < 2 || int(val[1]) > len(val)-2 {
				return o, notify(errOpen, 0, "capability overruns its parameter")
			}
			code, c := val[0], val[2:2+int(val[1])]
			val = val[2+int(val[1]):]
			switch {
			case code == 1 && len(c) == 4:
				o.mpListed = true
				afi, safi := binary.BigEndian.Uint16(c), c[3]
				o.ipv4 = o.ipv4 || (afi == afiIPv4 && safi == safiUnicast)
				o.ipv6 = o.ipv6 || (afi == afiIPv6 && safi == safiUnicast)
			case code == 65 && len(c) == 4:
				o.as4 = true
				o.as = binary.BigEndian.Uint32(c)
			}
		}
	}
	if !o.mpListed {
		o.ipv4 = true // RFC 4760: without the capability, IPv4 unicast
	}
	return o, nil
}

func marshalKeepalive() []byte { return appendHeader(nil, msgKeepalive, 0) }

func marshalNotification(e *notifyError) []byte {
	b := appendHeader(nil, msgNotification, 2+len(e.data))
	b = append(b, e.code, e.sub)
	return append(b, e.data...)
}

// update is what one UPDATE says: prefixes withdrawn, and prefixes
// announced with the path's communities.
type update struct {
	withdrawn   []netip.Prefix
	announced   []netip.Prefix
	communities []uint32
	emptyish    bool // no attributes, or only an MP_UNREACH_NLRI
}

// endOfRIB reports whether the UPDATE is an End-of-RIB marker (RFC
// 4724): nothing withdrawn, nothing announced, no attribute but an empty
// MP_UNREACH_NLRI.
func (u *update) endOfRIB() bool {
	return len(u.withdrawn) == 0 && len(u.announced) == 0 && u.emptyish
}

// parseUpdate reads an UPDATE's body into u, reusing its slices. A fault
// in the message's structure is returned, to end the session; a fault in
// one attribute's content makes the announced prefixes withdrawn
// instead (RFC 7606), as no safe meaning can be read from them.
func parseUpdate(body []byte, u *update) error {
	u.withdrawn, u.announced, u.communities = u.withdrawn[:0], u.announced[:0], u.communities[:0]
	if len(body) < 4 {
		return notify(errUpdate, subAttrList, "short UPDATE")
	}
	wl := int(binary.BigEndian.Uint16(body))
	if 2+wl+2 > len(body) {
		return notify(errUpdate, subAttrList, "withdrawn routes overrun the message")
	}
	var err error
	if u.withdrawn, err = appendPrefixes(u.withdrawn, body[2:2+wl], false); err != nil {
		return err
	}
	rest := body[2+wl:]
	al := int(binary.BigEndian.Uint16(rest))
	if 2+al > len(rest) {
		return notify(errUpdate, subAttrList, "path attributes overrun the message")
	}
	attrs, nlri := rest[2:2+al], rest[2+al:]
	u.emptyish = true
	treatAsWithdraw := false
	var seen [256]bool
	var reach []netip.Prefix
	for len(attrs) > 0 {
		if len(attrs) < 3 {
			return notify(errUpdate, subAttrList, "truncated attribute")
		}
		flags, typ := attrs[0], attrs[1]
		hl, n := 3, int(attrs[2])
		if flags&flagExtended != 0 {
			if len(attrs) < 4 {
				return notify(errUpdate, subAttrList, "truncated attribute")
			}
			hl, n = 4, int(binary.BigEndian.Uint16(attrs[2:4]))
		}
		if hl+n > len(attrs) {
			return notify(errUpdate, subAttrList, "attribute overruns the attributes")
		}
		val := attrs[hl : hl+n]
		attrs = attrs[hl+n:]
		if seen[typ] {
			if typ == attrMPReach || typ == attrMPUnreach {
				return notify(errUpdate, subAttrList, "repeated MP attribute")
			}
			continue // RFC 7606: later copies are discarded
		}
		seen[typ] = true
		if typ != attrMPUnreach {
			u.emptyish = false
		}
		switch typ {
		case attrCommunities:
			if len(val)%4 != 0 {
				treatAsWithdraw = true
				continue
			}
			for i := 0; i < len(val); i += 4 {
				u.communities = append(u.communities, binary.BigEndian.Uint32(val[i:]))
			}
		case attrMPReach:
			if len(val) < 5 {
				return notify(errUpdate, subAttrList, "short MP_REACH_NLRI")
			}
			afi, safi, nhl := binary.BigEndian.Uint16(val), val[2], int(val[3])
			if 4+nhl+1 > len(val) {
				return notify(errUpdate, subAttrList, "MP_REACH_NLRI next hop overruns it")
			}
			if safi != safiUnicast || (afi != afiIPv4 && afi != afiIPv6) {
				continue // a family spfd did not offer: ignored
			}
			if reach, err = appendPrefixes(reach, val[4+nhl+1:], afi == afiIPv6); err != nil {
				return err
			}
		case attrMPUnreach:
			if len(val) < 3 {
				return notify(errUpdate, subAttrList, "short MP_UNREACH_NLRI")
			}
			afi, safi := binary.BigEndian.Uint16(val), val[2]
			if safi != safiUnicast || (afi != afiIPv4 && afi != afiIPv6) {
				continue
			}
			if u.withdrawn, err = appendPrefixes(u.withdrawn, val[3:], afi == afiIPv6); err != nil {
				return err
			}
		}
	}
	if u.announced, err = appendPrefixes(u.announced, nlri, false); err != nil {
		return err
	}
	u.announced = append(u.announced, reach...)
	if treatAsWithdraw {
		u.withdrawn = append(u.withdrawn, u.announced...)
		u.announced, u.communities = u.announced[:0], u.communities[:0]
	}
	return nil
}

var errNetwork = notify(errUpdate, subBadNetwork, "malformed prefix")

// appendPrefixes reads a run of length-prefixed prefixes. A prefix with
// bits set past its length is kept as its network: the length is what
// the route covers.
func appendPrefixes(dst []netip.Prefix, b []byte, v6 bool) ([]netip.Prefix, error) {
	max := 32
	if v6 {
		max = 128
	}
	for len(b) > 0 {
		bits := int(b[0])
		n := (bits + 7) / 8
		if bits > max || 1+n > len(b) {
			return dst, errNetwork
		}
		var a netip.Addr
		if v6 {
			var x [16]byte
			copy(x[:], b[1:1+n])
			a = netip.AddrFrom16(x)
		} else {
			var x [4]byte
			copy(x[:], b[1:1+n])
			a = netip.AddrFrom4(x)
		}
		dst = append(dst, netip.PrefixFrom(a, bits).Masked())
		b = b[1+n:]
	}
	return dst, nil
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	b = append(b, byte(p.Bits()))
	n := (p.Bits() + 7) / 8
	if p.Addr().Is4() {
		a := p.Addr().As4()
		return append(b, a[:n]...)
	}
	a := p.Addr().As16()
	return append(b, a[:n]...)
}

func prefixLen(p netip.Prefix) int { return 1 + (p.Bits()+7)/8 }

// pathAttrs describes the session the UPDATEs are for.
type pathAttrs struct {
	localAS  uint32
	ebgp     bool
	as4      bool
	nextHop4 netip.Addr // IPv4 next hop: the session's local address
	nextHop6 netip.Addr // IPv6 next hop (IPv4-mapped on an IPv4 session)
}

// appendAttr appends one path attribute, with the extended length when
// it needs one.
func appendAttr(b []byte, flags, typ uint8, val []byte) []byte {
	if len(val) > 255 {
		b = append(b, flags|flagExtended, typ)
		b = binary.BigEndian.AppendUint16(b, uint16(len(val)))
	} else {
		b = append(b, flags, typ, byte(len(val)))
	}
	return append(b, val...)
}

// commonAttrs are ORIGIN, AS_PATH, LOCAL_PREF (internal sessions only)
// and COMMUNITIES.
func (pa pathAttrs) commonAttrs(community uint32) []byte {
	b := appendAttr(nil, flagTransitive, attrOrigin, []byte{0}) // IGP
	var path []byte
	if pa.ebgp {
		path = []byte{2, 1} // one AS_SEQUENCE of our AS
		if pa.as4 {
			path = binary.BigEndian.AppendUint32(path, pa.localAS)
		} else if pa.localAS > 0xffff {
			path = binary.BigEndian.AppendUint16(path, asTrans)
		} else {
			path = binary.BigEndian.AppendUint16(path, uint16(pa.localAS))
		}
	}
	b = appendAttr(b, flagTransitive, attrASPath, path)
	if !pa.ebgp {
		b = appendAttr(b, flagTransitive, attrLocalPref, binary.BigEndian.AppendUint32(nil, 100))
	}
	return appendAttr(b, flagOptional|flagTransitive, attrCommunities, binary.BigEndian.AppendUint32(nil, community))
}

// updateBuilder packs prefixes into as few UPDATEs as fit.
type updateBuilder struct {
	pa   pathAttrs
	msgs [][]byte
}

// room is what is left for prefixes in an UPDATE with fixed bytes.
func room(fixed int) int { return maxMsgLen - headerLen - 4 - fixed }

// announce adds UPDATEs announcing ps (one family) with community.
func (ub *updateBuilder) announce(ps []netip.Prefix, community uint32) {
	if len(ps) == 0 {
		return
	}
	common := ub.pa.commonAttrs(community)
	if ps[0].Addr().Is4() {
		nh := ub.pa.nextHop4.As4()
		attrs := appendAttr(common, flagTransitive, attrNextHop, nh[:])
		for len(ps) > 0 {
			var nlri []byte
			ps, nlri = take(ps, room(len(attrs)))
			ub.msgs = append(ub.msgs, marshalUpdate(nil, attrs, nlri))
		}
		return
	}
	nh := ub.pa.nextHop6.As16()
	head := binary.BigEndian.AppendUint16(nil, afiIPv6)
	head = append(head, safiUnicast, 16)
	head = append(head, nh[:]...)
	head = append(head, 0)
	for len(ps) > 0 {
		var nlri []byte
		ps, nlri = take(ps, room(len(common)+4+len(head)))
		attrs := appendAttr(common, flagOptional, attrMPReach, append(head[:len(head):len(head)], nlri...))
		ub.msgs = append(ub.msgs, marshalUpdate(nil, attrs, nil))
	}
}

// withdraw adds UPDATEs withdrawing ps (one family).
func (ub *updateBuilder) withdraw(ps []netip.Prefix) {
	if len(ps) == 0 {
		return
	}
	if ps[0].Addr().Is4() {
		for len(ps) > 0 {
			var w []byte
			ps, w = take(ps, room(0))
			ub.msgs = append(ub.msgs, marshalUpdate(w, nil, nil))
		}
		return
	}
	head := binary.BigEndian.AppendUint16(nil, afiIPv6)
	head = append(head, safiUnicast)
	for len(ps) > 0 {
		var w []byte
		ps, w = take(ps, room(4+len(head)))
		ub.msgs = append(ub.msgs, marshalUpdate(nil, appendAttr(nil, flagOptional, attrMPUnreach, append(head[:len(head):len(head)], w...)), nil))
	}
}

// take encodes prefixes from ps into at most n bytes and returns the rest.
func take(ps []netip.Prefix, n int) ([]netip.Prefix, []byte) {
	var b []byte
	i := 0
	for i < len(ps) && len(b)+prefixLen(ps[i]) <= n {
		b = appendPrefix(b, ps[i])
		i++
	}
	return ps[i:], b
}

func marshalUpdate(withdrawn, attrs, nlri []byte) []byte {
	n := 2 + len(withdrawn) + 2 + len(attrs) + len(nlri)
	b := appendHeader(make([]byte, 0, headerLen+n), msgUpdate, n)
	b = binary.BigEndian.AppendUint16(b, uint16(len(withdrawn)))
	b = append(b, withdrawn...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(attrs)))
	b = append(b, attrs...)
	return append(b, nlri...)
}

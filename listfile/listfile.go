// Package listfile reads and writes address lists in spamd-setup's format:
// one address, CIDR prefix or "a - b" range per line, '#' comments.
package listfile

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"go4.org/netipx"
)

// MaxLine bounds one line; longer lines are errors.
const MaxLine = 1024

// Read parses a list. Bad lines are reported (with their numbers) and
// skipped; they never abort the list.
func Read(r io.Reader) ([]netip.Prefix, []error) {
	var out []netip.Prefix
	errs := Scan(r, func(_ int, ps []netip.Prefix) { out = append(out, ps...) })
	return out, errs
}

// Scan parses a list as Read does and hands each line's prefixes to f
// with the line's number, so a caller can say where an entry came from.
func Scan(r io.Reader, f func(line int, ps []netip.Prefix)) []error {
	var errs []error
	br := bufio.NewReaderSize(r, 64<<10)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			errs = append(errs, fmt.Errorf("line %d: longer than %d bytes", n, br.Size()))
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			continue
		}
		if len(line) > 0 {
			ps, perr := ParseLine(string(line))
			if perr != nil {
				errs = append(errs, fmt.Errorf("line %d: %w", n, perr))
			}
			if len(ps) > 0 {
				f(n, ps)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
	}
	return errs
}

// ParseLine parses one line as spamd-setup(8) reads it: nothing (blank,
// or a comment starting with '#'), else a first token that is an address,
// a prefix or a range "a-b", or an address followed by spaces or dashes
// and a second address (a range "a - b"). What follows is a comment
// ("1.10.16.0/20 ; SBL256894", "192.0.2.40 spammer"). A prefix whose
// address has host bits set means what spamd-setup makes of it: the
// range of the prefix's size that starts at that address (10.1.2.3/16 is
// 10.1.2.3 to 10.2.2.2), not the masked network.
func ParseLine(line string) ([]netip.Prefix, error) {
	if len(line) > MaxLine {
		return nil, fmt.Errorf("longer than %d bytes", MaxLine)
	}
	line = strings.TrimLeft(strings.TrimRight(line, "\r\n"), " \t")
	if line == "" || line[0] == '#' {
		return nil, nil
	}
	tok, rest, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
	if from, to, ok := strings.Cut(tok, "-"); ok {
		return rangePrefixes(from, to, line)
	}
	if strings.Contains(tok, "/") {
		p, err := netip.ParsePrefix(tok)
		if err != nil || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("invalid prefix %q", tok)
		}
		a := p.Addr().Unmap()
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
			if bits < 0 {
				return nil, fmt.Errorf("invalid prefix %q", tok)
			}
		}
		if netip.PrefixFrom(a, bits).Masked().Addr() == a {
			return []netip.Prefix{netip.PrefixFrom(a, bits)}, nil
		}
		last := netipx.RangeOfPrefix(netip.PrefixFrom(a, bits)).To()
		end := addOffset(a, netipx.RangeOfPrefix(netip.PrefixFrom(a, bits).Masked()), last)
		return netipx.IPRangeFrom(a, end).Prefixes(), nil
	}
	a, err := netip.ParseAddr(tok)
	if err != nil || a.Zone() != "" {
		return nil, fmt.Errorf("invalid address %q", tok)
	}
	// "a - b" or "a b": spaces and dashes, then a second address.
	if sep := strings.TrimLeft(rest, " -"); sep != rest {
		second, _, _ := strings.Cut(sep, " ")
		if b, err := netip.ParseAddr(second); err == nil && b.Zone() == "" && strings.Contains(rest[:len(rest)-len(sep)], "-") {
			return rangePrefixes(tok, second, line)
		}
	}
	a = a.Unmap()
	return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
}

func rangePrefixes(from, to, line string) ([]netip.Prefix, error) {
	a, err1 := netip.ParseAddr(strings.TrimSpace(from))
	b, err2 := netip.ParseAddr(strings.TrimSpace(to))
	if err1 != nil || err2 != nil || a.Zone() != "" || b.Zone() != "" {
		return nil, fmt.Errorf("invalid range %q", line)
	}
	r := netipx.IPRangeFrom(a.Unmap(), b.Unmap())
	if !r.IsValid() {
		return nil, fmt.Errorf("invalid range %q", line)
	}
	return r.Prefixes(), nil
}

// addOffset returns start + (last - network.From()): the end of a range
// as long as the prefix's network, starting at start, capped at the end
// of the address space.
func addOffset(start netip.Addr, network netipx.IPRange, last netip.Addr) netip.Addr {
	from := network.From().As16()
	s := start.As16()
	// size := last - from (the prefix's host part, all ones), in 128 bits.
	var off, out [16]byte
	borrow := 0
	l := last.As16()
	for i := 15; i >= 0; i-- {
		d := int(l[i]) - int(from[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		off[i] = byte(d)
	}
	carry := 0
	for i := 15; i >= 0; i-- {
		v := int(s[i]) + int(off[i]) + carry
		out[i] = byte(v)
		carry = v >> 8
	}
	if carry != 0 {
		out = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	end := netip.AddrFrom16(out)
	if start.Is4() {
		end = end.Unmap()
		if !end.Is4() {
			return netip.AddrFrom4([4]byte{255, 255, 255, 255})
		}
	}
	return end
}

// Write writes prefixes one a line.
func Write(w io.Writer, prefixes []netip.Prefix) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	for _, p := range prefixes {
		buf = p.AppendTo(buf[:0])
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

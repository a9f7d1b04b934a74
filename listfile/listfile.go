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

// ParseLine parses one line: nothing (blank or comment), an address, a
// prefix (host bits are masked, as spamd-setup does), or a range "a - b".
func ParseLine(line string) ([]netip.Prefix, error) {
	if len(line) > MaxLine {
		return nil, fmt.Errorf("longer than %d bytes", MaxLine)
	}
	line, _, _ = strings.Cut(line, "#")
	line = strings.TrimSpace(line)
	if line == "" {
		return nil, nil
	}
	if from, to, ok := strings.Cut(line, "-"); ok {
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
	if strings.ContainsAny(line, " \t") {
		return nil, fmt.Errorf("unexpected text in %q", line)
	}
	if a, err := netip.ParseAddr(line); err == nil && a.Zone() == "" {
		a = a.Unmap()
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}, nil
	}
	p, err := netip.ParsePrefix(line)
	if err != nil || p.Addr().Zone() != "" {
		return nil, fmt.Errorf("invalid address or prefix %q", line)
	}
	return []netip.Prefix{p.Masked()}, nil
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

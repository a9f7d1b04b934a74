// Command cover compares two walkers' outputs: the address space each
// covers, what one has that the other lacks, and lines that are not clean
// prefixes (host bits set, unparseable).
package main

import (
	"bufio"
	"fmt"
	"log"
	"net/netip"
	"os"
	"strings"

	"go4.org/netipx"
)

type summary struct {
	set             *netipx.IPSet
	lines, hostBits int
	bad             []string
	v6              int
}

func read(path string) (summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return summary{}, err
	}
	defer f.Close()
	var s summary
	var b netipx.IPSetBuilder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		s.lines++
		line = strings.TrimPrefix(strings.TrimPrefix(line, "ip4:"), "ip6:")
		p, err := netip.ParsePrefix(line)
		if err != nil {
			a, aerr := netip.ParseAddr(line)
			if aerr != nil {
				if len(s.bad) < 5 {
					s.bad = append(s.bad, line)
				}
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Masked() != p {
			s.hostBits++
		}
		if p.Addr().Is6() {
			s.v6++
		}
		b.AddPrefix(p.Masked())
	}
	if err := sc.Err(); err != nil {
		return summary{}, err
	}
	s.set, err = b.IPSet()
	return s, err
}

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: cover OURS THEIRS")
	}
	ours, err := read(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	theirs, err := read(os.Args[2])
	if err != nil {
		log.Fatal(err)
	}
	for _, x := range []struct {
		name string
		s    summary
	}{{os.Args[1], ours}, {os.Args[2], theirs}} {
		fmt.Printf("%s: %d lines, %d IPv6, %d with host bits set, %d unparseable %q, minimal cover %d prefixes\n",
			x.name, x.s.lines, x.s.v6, x.s.hostBits, len(x.s.bad), x.s.bad, len(x.s.set.Prefixes()))
	}
	diff := func(a, b *netipx.IPSet) []netip.Prefix {
		var d netipx.IPSetBuilder
		d.AddSet(a)
		d.RemoveSet(b)
		s, _ := d.IPSet()
		return s.Prefixes()
	}
	onlyOurs, onlyTheirs := diff(ours.set, theirs.set), diff(theirs.set, ours.set)
	fmt.Printf("only in %s: %d prefixes %v\n", os.Args[1], len(onlyOurs), head(onlyOurs))
	fmt.Printf("only in %s: %d prefixes %v\n", os.Args[2], len(onlyTheirs), head(onlyTheirs))
}

func head(p []netip.Prefix) []netip.Prefix {
	if len(p) > 5 {
		return p[:5]
	}
	return p
}

// Command spfzone writes a synthetic SPF zone for benchmarks: N apexes,
// each with its own ip4, ip6, a and mx terms and includes of a few shared
// provider trees (four includes deep). It also writes the domain list and the
// number of distinct DNS questions a correct walker must ask.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

const zone = "bench.test"

func main() {
	n := flag.Int("n", 10000, "number of apexes")
	providers := flag.Int("p", 16, "number of shared provider trees")
	dir := flag.String("dir", ".", "output directory")
	simple := flag.Bool("simple", false, "apexes with ip4 and include terms only: the work every walker does the same way")
	flag.Parse()
	if err := write(*dir, *n, *providers, *simple); err != nil {
		log.Fatal(err)
	}
}

// questions counts the distinct (name, type) pairs a walk needs.
type questions map[string]bool

func (q questions) ask(name, qtype string) { q[name+"/"+qtype] = true }

func write(dir string, n, providers int, simple bool) error {
	zf, err := os.Create(filepath.Join(dir, zone+".zone"))
	if err != nil {
		return err
	}
	defer zf.Close()
	z := bufio.NewWriter(zf)
	fmt.Fprintf(z, "$ORIGIN %s.\n$TTL 3600\n@ IN SOA ns.%s. hostmaster.%s. 1 3600 600 86400 300\n@ IN NS ns.%s.\nns IN A 127.0.0.1\n", zone, zone, zone, zone)

	need := questions{}
	// Provider trees: pK includes pK-a and pK-b; each of those includes a
	// leaf chain two deep, so the deepest include is four levels below an
	// apex.
	var walkProvider func(name string, depth int)
	provTXT := map[string]string{}
	for k := range providers {
		root := fmt.Sprintf("_spf.p%d.%s", k, zone)
		provTXT[root] = fmt.Sprintf("v=spf1 include:a._spf.p%d.%s include:b._spf.p%d.%s ~all", k, zone, k, zone)
		for j, side := range []string{"a", "b"} {
			mid := fmt.Sprintf("%s._spf.p%d.%s", side, k, zone)
			leaf := fmt.Sprintf("leaf.%s", mid)
			provTXT[mid] = fmt.Sprintf("v=spf1 ip4:%d.%d.0.0/16 include:%s -all", 100+k, j, leaf)
			deep := "deep." + leaf
			provTXT[leaf] = fmt.Sprintf("v=spf1 ip4:%d.%d.0.0/16 include:%s -all", 100+k, 10+j, deep)
			provTXT[deep] = fmt.Sprintf("v=spf1 ip6:2001:db8:%x:%x::/64 ip4:%d.%d.0.0/16 -all", k, j, 100+k, 20+j)
		}
	}
	walkProvider = func(name string, depth int) {
		need.ask(name, "TXT")
		switch depth {
		case 0:
			walkProvider("a."+name, 1)
			walkProvider("b."+name, 1)
		case 1:
			walkProvider("leaf."+name, 2)
		case 2:
			walkProvider("deep."+name, 3)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(provTXT)) {
		fmt.Fprintf(z, "%s. IN TXT %q\n", name, provTXT[name])
	}

	lf, err := os.Create(filepath.Join(dir, "domains.txt"))
	if err != nil {
		return err
	}
	defer lf.Close()
	l := bufio.NewWriter(lf)
	for i := range n {
		d := fmt.Sprintf("d%05d.%s", i, zone)
		hi, lo := i/256, i%256
		p1, p2 := i%providers, (i*7+3)%providers
		mx := "mx." + d
		var txt string
		switch {
		case simple:
			txt = fmt.Sprintf("v=spf1 ip4:44.%d.%d.0/24 include:_spf.p%d.%s include:_spf.p%d.%s ~all", hi, lo, p1, zone, p2, zone)
		case i%10 == 0: // redirect instead of include, dual-CIDR mx
			txt = fmt.Sprintf("v=spf1 ip4:44.%d.%d.0/24 ip6:2001:db8:%x::/48 a mx/28//64 redirect=_spf.p%d.%s", hi, lo, i, p1, zone)
		case i%10 == 1: // a with a length
			txt = fmt.Sprintf("v=spf1 ip4:44.%d.%d.0/24 ip6:2001:db8:%x::/48 a/24 mx include:_spf.p%d.%s include:_spf.p%d.%s -all", hi, lo, i, p1, zone, p2, zone)
		default:
			txt = fmt.Sprintf("v=spf1 ip4:44.%d.%d.0/24 ip6:2001:db8:%x::/48 a mx include:_spf.p%d.%s include:_spf.p%d.%s ~all", hi, lo, i, p1, zone, p2, zone)
		}
		fmt.Fprintf(z, "%s. IN TXT %q\n%s. IN A 45.%d.%d.1\n%s. IN MX 10 %s.\n%s. IN A 46.%d.%d.25\n%s. IN AAAA 2001:db8:ffff:%x::25\n",
			d, txt, d, hi, lo, d, mx, mx, hi, lo, mx, i)
		need.ask(d, "TXT")
		if !simple {
			need.ask(d, "A")
			need.ask(d, "AAAA")
			need.ask(d, "MX")
			need.ask(mx, "A")
			need.ask(mx, "AAAA")
		}
		walkProvider(fmt.Sprintf("_spf.p%d.%s", p1, zone), 0)
		if simple || i%10 != 0 {
			walkProvider(fmt.Sprintf("_spf.p%d.%s", p2, zone), 0)
		}
		fmt.Fprintln(l, d)
	}
	if err := z.Flush(); err != nil {
		return err
	}
	if err := l.Flush(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "questions"), []byte(fmt.Sprintln(len(need))), 0o644)
}

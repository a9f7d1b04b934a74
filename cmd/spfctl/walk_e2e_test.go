package main

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spfd/spfd/internal/nsdtest"
	"github.com/spfd/spfd/internal/runtest"
	"go4.org/netipx"
)

const zonesDir = "../../testdata/spf-realworld"

// buildSpfctl builds the command once per test binary.
func buildSpfctl(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "spfctl")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func run(t *testing.T, stdin string, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	stdout, stderr, code, err := runtest.Output(cmd)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	return stdout, stderr, code
}

func readExpected(t *testing.T, domain string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(zonesDir, "expected", domain+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestWalkRealWorldZones walks the dated real-world zones served by NSD and
// compares with prefix lists derived by hand from the zone data.
func TestWalkRealWorldZones(t *testing.T) {
	addr := nsdtest.Start(t, zonesDir)
	bin := buildSpfctl(t)
	for _, domain := range []string{"google.com", "outlook.com", "icloud.com", "yahoo.com"} {
		t.Run(domain, func(t *testing.T) {
			out, errOut, code := run(t, "", bin, "walk", "-s", addr, domain)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got, want := strings.Fields(out), readExpected(t, domain); !slices.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}

	t.Run("stdin list is aggregated across domains", func(t *testing.T) {
		list := "# mail providers\ngoogle.com  extra words\nOUTLOOK.com.\n\nicloud.com # apple\ngoogle.com\nyahoo.com\n"
		out, errOut, code := run(t, list, bin, "walk", "-s", addr)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var b netipx.IPSetBuilder
		for _, d := range []string{"google.com", "outlook.com", "icloud.com", "yahoo.com"} {
			for _, p := range readExpected(t, d) {
				b.AddPrefix(netip.MustParsePrefix(p))
			}
		}
		set, _ := b.IPSet()
		var want []string
		for _, p := range set.Prefixes() {
			want = append(want, p.String())
		}
		if got := strings.Fields(out); !slices.Equal(got, want) {
			t.Errorf("got %d prefixes, want %d:\n%s", len(got), len(want), out)
		}
	})

	t.Run("-4 and -6 filter", func(t *testing.T) {
		all := readExpected(t, "google.com")
		for _, flag := range []string{"-4", "-6"} {
			out, _, code := run(t, "", bin, "walk", flag, "-s", addr, "google.com")
			if code != 0 {
				t.Fatalf("%s: exit %d", flag, code)
			}
			var want []string
			for _, p := range all {
				if strings.Contains(p, ":") == (flag == "-6") {
					want = append(want, p)
				}
			}
			if got := strings.Fields(out); !slices.Equal(got, want) {
				t.Errorf("%s: got %v, want %v", flag, got, want)
			}
		}
	})

	t.Run("verbose detail and warnings", func(t *testing.T) {
		_, errOut, code := run(t, "", bin, "walk", "-v", "-s", addr, "yahoo.com", "outlook.com")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{
			"yahoo.com: complete, 0 networks",
			"ptr:yahoo.com cannot be enumerated",
			"ip4:207.68.169.173/30 has host bits set, using 207.68.169.172/30",
			"outlook.com: complete, 61 networks",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
	})

	t.Run("a summary always, and a record that yields nothing says why", func(t *testing.T) {
		_, errOut, code := run(t, "", bin, "walk", "-s", addr, "yahoo.com", "icloud.com")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		for _, want := range []string{
			"spfctl walk: 2 domains, 2 complete, 0 failed, " + fmt.Sprint(len(readExpected(t, "icloud.com"))) + " networks",
			"ptr:yahoo.com cannot be enumerated",
			"yahoo.com: warning: no networks to whitelist",
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
		if strings.Contains(errOut, "icloud.com: warning") {
			t.Errorf("warnings about a domain with networks without -v:\n%s", errOut)
		}
	})

	t.Run("failures exit 1 and still print the rest", func(t *testing.T) {
		// gmx.net has no apex TXT; example.org is outside the served
		// zones, so NSD answers REFUSED: a temporary failure.
		out, errOut, code := run(t, "", bin, "walk", "-s", addr, "icloud.com", "gmx.net", "example.org")
		if code != 1 {
			t.Fatalf("exit %d, want 1", code)
		}
		if got, want := strings.Fields(out), readExpected(t, "icloud.com"); !slices.Equal(got, want) {
			t.Errorf("partial output %v, want %v", got, want)
		}
		for _, want := range []string{"gmx.net: no SPF record", "example.org: temporary-failure", "REFUSED"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
		}
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"walk", "-x"},
			{"walk", "-4", "-6", "google.com"},
			{"walk", "-s", "ns.example.com", "google.com"},
			{"walk", "-s", addr, "bad..domain"},
			{"nosuchcommand"},
			{},
		} {
			if _, _, code := run(t, "", bin, args...); code != 2 {
				t.Errorf("spfctl %v: exit %d, want 2", args, code)
			}
		}
	})
}

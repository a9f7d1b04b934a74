// Package coverage compares spfd's log mining with fail2ban's on
// fail2ban's own sample logs: bench/coverage.sh runs its test verbosely.
package coverage

import (
	"bufio"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/logwatch"
)

// fail2banSamples are the sample logs Debian's fail2ban package ships
// with its tests, each line annotated by fail2ban's authors.
const fail2banSamples = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"

// framedByFail2ban are sample lines where fail2ban names an address that
// stands inside the attacker's text, with the address sshd itself wrote.
// A password failure carries no auth info after "ssh2", so the user name
// is the attacker's "test from 127.0.0.1 port 58946 ssh2:" and the
// client is the one at the end.
var framedByFail2ban = map[string]string{
	"Nov 11 08:04:52 redbamboo sshd[2737]: Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: from 10.10.1.2 port 55555 ssh2": "10.10.1.2",
}

// TestCoverageAgainstFail2ban: on fail2ban's own samples, each line
// scanned alone by fail2ban-regex (the filter in normal mode) and by
// spfd, spfd strikes the address fail2ban names on at least 90% of the
// lines fail2ban flags, per filter, and never another address but where
// fail2ban's is the attacker's text. With -v it logs what each flags and
// the lines where they differ.
func TestCoverageAgainstFail2ban(t *testing.T) {
	if _, err := exec.LookPath("fail2ban-regex"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("fail2ban-regex not installed (apt-get install fail2ban); CI must run this test")
		}
		t.Skip("needs Debian's fail2ban package")
	}
	for _, f := range []struct{ sample, family, filter string }{
		{"sshd", "sshd", "sshd[mode=normal]"},
		{"nginx-botsearch", "httpd", "nginx-botsearch"},
		{"apache-botsearch", "httpd", "apache-botsearch"},
		{"apache-noscript", "httpd", "apache-noscript"},
		{"nginx-bad-request", "httpd", "nginx-bad-request"},
	} {
		t.Run(f.sample, func(t *testing.T) {
			lines := sampleLines(t, filepath.Join(fail2banSamples, f.sample))
			theirs := fail2banIPs(t, lines, f.filter)
			flagged, same, other, missed, alone := 0, 0, 0, 0, 0
			for i, line := range lines {
				ours := struck(f.family, line)
				switch {
				case theirs[i] == "" && ours != "-":
					alone++
					t.Logf("spfd alone strikes %s: %s", ours, line)
				case theirs[i] == "":
				case sameAddr(ours, theirs[i]):
					flagged++
					same++
				case ours == "-":
					flagged++
					missed++
					t.Logf("spfd misses %s: %s", theirs[i], line)
				case framedByFail2ban[line] == ours:
					flagged++
					other++
					t.Logf("spfd strikes %s, fail2ban the attacker's text %s: %s", ours, theirs[i], line)
				default:
					flagged++
					other++
					t.Errorf("spfd strikes %s where fail2ban names %s: %s", ours, theirs[i], line)
				}
			}
			t.Logf("%s: fail2ban flags %d lines; spfd flags %d of them with the same address, %d with another, misses %d; spfd alone flags %d",
				f.sample, flagged, same, other, missed, alone)
			if flagged == 0 || same*10 < flagged*9 {
				t.Errorf("spfd strikes fail2ban's address on %d of the %d lines it flags, want at least 90%%", same, flagged)
			}
		})
	}
}

// sampleLines reads a sample log's lines, without comments and blank
// lines.
func sampleLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") && strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// fail2banIPs runs fail2ban-regex on each line alone, on every core, and
// returns the address it names for each ("" for none).
func fail2banIPs(t *testing.T, lines []string, filter string) []string {
	dir := t.TempDir()
	ips := make([]string, len(lines))
	errs := make([]error, len(lines))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := filepath.Join(dir, "line"+strings.Repeat("x", w))
			for i := range next {
				if errs[i] = os.WriteFile(path, []byte(lines[i]+"\n"), 0o600); errs[i] != nil {
					continue
				}
				out, _ := exec.Command("fail2ban-regex", "-o", "ip", path, filter).Output() // exit 1: no match
				ips[i], _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
			}
		}()
	}
	for i := range lines {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ips
}

// sameAddr compares addresses as addresses where both parse.
func sameAddr(a, b string) bool {
	x, errx := netip.ParseAddr(a)
	y, erry := netip.ParseAddr(b)
	if errx == nil && erry == nil {
		return x == y
	}
	return a == b
}

// now is the clock the lines are read at: a fixed day, as the samples
// span years and a threshold of one needs no window.
var now = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

// struck is the address a line of family typ strikes when scanned alone
// (a fresh processor, threshold 1), or "-".
func struck(typ, line string) string {
	src := config.DefaultLogSource(typ)
	src.Threshold = 1
	p := logwatch.NewProcessor(src, nil)
	p.UseLineTime = true
	for _, o := range p.Line(line, now) {
		if o.Action == logwatch.Ban {
			return o.Addr.String()
		}
	}
	return "-"
}

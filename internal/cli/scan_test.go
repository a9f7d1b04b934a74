package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/internal/runtest"
	"github.com/spfd/spfd/logwatch"
)

func scanRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	code := Main(env, append([]string{"scan"}, args...))
	return out.String(), errOut.String(), code
}

func TestScanAuthlog(t *testing.T) {
	out, errOut, code := scanRun(t, "", "-t", "sshd", "../../testdata/logs/authlog")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"2\tssh-invalid-user\t203.0.113.5\tssh-invalid-user [1]\n",
		"3\tssh-failed\t203.0.113.5\tssh-failed (same attempt)\n",
		"7\tssh-failed\t203.0.113.5\tssh-failed (root) [3] => blacklist (sshd)\n",
		// The crafted user names name 198.51.100.66; the client is 2001:db8::bad.
		"10\tssh-invalid-user\t2001:db8::bad\t",
		"# blacklist 203.0.113.5\tsshd\tttl 24h0m0s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, never := range []string{"198.51.100.66", "198.51.100.99", "198.51.100.80", "192.0.2.7"} {
		if strings.Contains(out, never) {
			t.Errorf("output names %s:\n%s", never, out)
		}
	}
}

func TestScanAutoAndConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "spfd.conf")
	os.WriteFile(conf, []byte(`whitelist 203.0.113.44
log maillog file "/var/log/maillog" capture yes spamtraps { trap@example.org }
log sshd file "/var/log/authlog" threshold 10 within 1h
`), 0o644)
	out, errOut, code := scanRun(t, "", "-c", conf, "../../testdata/logs/authlog", "../../testdata/logs/access.log", "../../testdata/logs/maillog")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"../../testdata/logs/maillog:2\tmail-recipient\t203.0.113.77\tmail to spamtrap trap@example.org [1] => blacklist (spamtrap)",
		"../../testdata/logs/maillog:5\tmail-sent\ticloud.com\tmail from alice@example.org [1] => capture",
		"# capture icloud.com",
		"# would blacklist 1 address", // threshold 10: sshd bans nobody; 203.0.113.44 is whitelisted
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "203.0.113.44") {
		t.Errorf("whitelisted address reported:\n%s", out)
	}
}

func TestScanStdinAndErrors(t *testing.T) {
	out, _, code := scanRun(t, "Nov 27 03:14:02 mx1 sshd[1]: Invalid user a from 203.0.113.5 port 1\n", "-t", "sshd")
	if code != ExitOK || !strings.HasPrefix(out, "1\tssh-invalid-user\t203.0.113.5\t") {
		t.Errorf("stdin: exit %d %q", code, out)
	}
	if _, _, code := scanRun(t, "", "/nonexistent/log"); code != ExitFailure {
		t.Errorf("unreadable file: exit %d, want 1", code)
	}
	if _, _, code := scanRun(t, "", "-t", "ftpd"); code != ExitUsage {
		t.Errorf("bad type: exit %d, want 2", code)
	}
	if _, _, code := scanRun(t, "", "-c", "/nonexistent.conf"); code != ExitUsage {
		t.Errorf("bad config: exit %d, want 2", code)
	}
}

// scan -f follows a growing file (through nxadm/tail) and reports events
// as lines arrive; cancelling the context ends it with a summary.
func TestScanFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authlog")
	os.WriteFile(path, []byte("Nov 27 03:14:02 mx1 sshd[1]: Invalid user old from 203.0.113.1 port 1\n"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out runtest.Buffer
	env := Env{Ctx: ctx, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
	done := make(chan int, 1)
	counted := make(chan struct{})
	followCounted = func() { close(counted) }
	defer func() { followCounted = func() {} }()
	go func() { done <- Main(env, []string{"scan", "-t", "sshd", "-f", path}) }()
	<-counted // what is written from here on is followed
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	for port := 1; port <= 3; port++ {
		fmt.Fprintf(f, "Nov 27 03:14:02 mx1 sshd[%d]: Invalid user admin from 203.0.113.5 port %d\n", 100+port, port)
	}
	f.Close()
	waitOutput := func(want string) {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitOutput("=> blacklist (sshd)")
	// Rotated: the new file's lines are numbered from 1, and scan says so.
	os.Rename(path, path+".0")
	os.WriteFile(path, []byte("Nov 27 03:15:00 mx1 sshd[200]: Invalid user new from 203.0.113.9 port 9\n"), 0o644)
	waitOutput("203.0.113.9")
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	got := out.String()
	// Line 1 was there before: the new lines are 2 to 4, as in the file.
	if !strings.Contains(got, "4\tssh-invalid-user\t203.0.113.5\tssh-invalid-user [3] => blacklist (sshd)") ||
		strings.Contains(got, "203.0.113.1") || !strings.Contains(got, "# blacklist 203.0.113.5") || !strings.Contains(got, "# 4 lines, 4 events") ||
		!strings.Contains(got, "was rotated or truncated: line numbers restart at 1\n1\tssh-invalid-user\t203.0.113.9") {
		t.Fatalf("output:\n%s", got)
	}
	if _, _, code := scanRun(t, "", "-f", "a", "b"); code != ExitUsage {
		t.Errorf("-f with two files: exit %d", code)
	}
}

// mixedLog returns n lines of sshd, httpd and mail traffic from a pool of
// addresses small enough that rules fire, in the order a busy host logs
// them.
func mixedLog(n int) string {
	rng := rand.New(rand.NewPCG(1, 2))
	pool := make([]string, 0, 400)
	for i := range cap(pool) {
		switch i % 8 {
		case 0:
			pool = append(pool, fmt.Sprintf("2001:db8:%x::%x", i, rng.IntN(1<<16)))
		case 1:
			pool = append(pool, fmt.Sprintf("127.0.%d.%d", i%256, 1+rng.IntN(250))) // exempt
		default:
			pool = append(pool, fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254)))
		}
	}
	var b strings.Builder
	for i := range n {
		a := pool[rng.IntN(len(pool))]
		ts := fmt.Sprintf("Nov 27 %02d:%02d:%02d", 3+i/3600%20, i/60%60, i%60)
		port := 1024 + rng.IntN(8)
		switch rng.IntN(9) {
		case 0:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Invalid user admin from %s port %d\n", ts, i, a, port)
		case 1:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Failed password for root from %s port %d ssh2\n", ts, i, a, port)
		case 2:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Connection closed by invalid user x %s port %d [preauth]\n", ts, i, a, port)
		case 3:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Accepted publickey for alice from %s port %d ssh2: ED25519 SHA256:abc\n", ts, i, a, port)
		case 4, 5:
			fmt.Fprintf(&b, "www.example.org %s - - [27/Nov/2026:%02d:%02d:%02d +0000] \"GET /%s HTTP/1.1\" %d 0 \"-\" \"x\"\n",
				a, 3+i/3600%20, i/60%60, i%60, []string{"", "wp-admin/", "x.png"}[rng.IntN(3)], []int{200, 404, 403}[rng.IntN(3)])
		case 6:
			fmt.Fprintf(&b, "%s mx1 smtpd[7]: %016x smtp connected address=%s host=<unknown>\n", ts, i, a)
			fmt.Fprintf(&b, "%s mx1 smtpd[7]: %016x smtp envelope evpid=%08x00000001 from=<x@spam.example> to=<trap@example.org>\n", ts, i, i)
		case 7:
			// A local user's mail: through the local socket, then out.
			d := rng.IntN(30)
			fmt.Fprintf(&b, "%s mx1 smtpd[7]: %016x smtp connected address=local host=mx1\n", ts, i)
			fmt.Fprintf(&b, "%s mx1 smtpd[7]: %016x smtp envelope evpid=%08x00000001 from=<alice@example.org> to=<bob@d%d.example>\n", ts, i, i, d)
			fmt.Fprintf(&b, "%s mx1 smtpd[7]: %016x mta delivery evpid=%08x00000001 from=<alice@example.org> to=<bob@d%d.example> rcpt=<-> source=\"192.0.2.1\" relay=\"mx.d.example [198.51.100.1]\" delay=1s result=\"Ok\" stat=\"250 Ok\"\n", ts, i, i, d)
		default:
			b.WriteString("garbage that no parser takes\n")
		}
	}
	return b.String()
}

// The pipeline (chunks parsed on every core, rules in shards, reports
// merged by line) must say exactly what one processor fed line by line
// says.
func TestScanShardsAgreeWithSequential(t *testing.T) {
	cfg, err := config.Parse("t.conf", strings.NewReader("log maillog file \"/var/log/maillog\" capture yes spamtraps { trap@example.org }\n"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	text := mixedLog(40_000) // several chunks
	var want bytes.Buffer
	ref := newScanner(cfg, "auto", &want, 1)
	var buf []byte
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		ref.lines++
		if fam := ref.family(line); fam != famNone {
			sh := ref.shards[0]
			for _, o := range sh.procs[fam].Line(line, ref.now) {
				buf = sh.appendReport(buf[:0], "", n+1, &o)
				ref.out.Write(buf)
			}
		}
	}
	ref.summary()
	ref.out.Flush()
	if !strings.Contains(want.String(), "=> blacklist (sshd)") || !strings.Contains(want.String(), "=> blacklist (httpd-probe)") ||
		!strings.Contains(want.String(), "=> blacklist (spamtrap)") || !strings.Contains(want.String(), "=> capture") {
		t.Fatalf("the mixed log does not exercise every rule:\n%.2000s", want.String())
	}
	// Addresses that rules of two shards banned (mail is in shard 0) are merged
	// into one summary line, the rules sorted.
	if !regexp.MustCompile(`(?m)^# blacklist \S+\thttpd-probe,spamtrap,sshd\tttl 24h0m0s$`).MatchString(want.String()) {
		t.Fatalf("no address banned by rules of two shards in the summary:\n%s", want.String()[strings.Index(want.String(), "# would blacklist"):])
	}
	for _, shards := range []int{1, 2, 5} {
		var got bytes.Buffer
		s := newScanner(cfg, "auto", &got, shards)
		s.now = ref.now
		if err := s.scan(context.Background(), strings.NewReader(text), ""); err != nil {
			t.Fatal(err)
		}
		s.summary()
		s.out.Flush()
		if got.String() != want.String() {
			g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Fatalf("%d shards: line %d of the report differs:\n got %q\nwant %q", shards, i+1, g[i], w[i])
				}
			}
			t.Fatalf("%d shards: %d report lines, want %d", shards, len(g), len(w))
		}
	}
}

// A line longer than the reader keeps is dropped whole: its tail, which
// an attacker controls, is never parsed as a line of its own, wherever
// the reader happens to cut it.
func TestScanOverlongLine(t *testing.T) {
	head := "Nov 27 03:14:02 mx1 sshd[1]: Bogus " // the whole line is no sshd message
	fake := "Nov 27 03:14:02 mx1 sshd[1]: Invalid user a from 203.0.113.9 port 1\n"
	real := "Nov 27 03:14:02 mx1 sshd[1]: Invalid user b from 203.0.113.5 port 2\n"
	const readSize = 64 // lines over 256 bytes are dropped
	for pad := 200; pad < 700; pad++ {
		// Somewhere in this range the fake message starts exactly where
		// the reader gives up on the line.
		text := head + strings.Repeat("x", pad) + fake + real
		var out bytes.Buffer
		s := newScanner(config.Default(), "sshd", &out, 2)
		s.readSize = readSize
		if err := s.scan(context.Background(), strings.NewReader(text), ""); err != nil {
			t.Fatal(err)
		}
		s.summary()
		s.out.Flush()
		got := out.String()
		if strings.Contains(got, "203.0.113.9") || !strings.Contains(got, "# 2 lines,") ||
			!strings.HasPrefix(got, "2\tssh-invalid-user\t203.0.113.5\t") {
			t.Fatalf("padding %d: output:\n%.500s", pad, got)
		}
	}
}

// endless is an sshd log that never ends.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	line := fmt.Sprintf("Nov 27 03:14:02 mx1 sshd[1]: Invalid user a from 203.0.113.%d port %d\n", e.n%250+1, e.n%60000+1)
	e.n++
	return copy(p, line), nil
}

// Interrupting a scan stops it between chunks, with every pipeline
// goroutine gone, and what was read still counted.
func TestScanStopsWhenCancelled(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	s := newScanner(config.Default(), "sshd", &out, 2)
	done := make(chan error, 1)
	go func() { done <- s.scan(ctx, &endless{}, "") }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("scan returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scan did not stop")
	}
	if s.lines == 0 || s.shards[0].events+s.shards[1].events == 0 {
		t.Fatalf("nothing counted: %d lines", s.lines)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running, %d before", n, before)
	}
}

// "-" is standard input; an interrupted scan says so, still prints the
// summary, and exits 1.
func TestScanDashAndInterrupted(t *testing.T) {
	line := "Nov 27 03:14:02 mx1 sshd[1]: Invalid user a from 203.0.113.5 port 1\n"
	out, _, code := scanRun(t, line, "-t", "sshd", "-", "../../testdata/logs/authlog")
	if code != ExitOK || !strings.HasPrefix(out, "-:1\tssh-invalid-user\t203.0.113.5\t") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var stdout, stderr bytes.Buffer
	code = Main(Env{Ctx: ctx, Stdin: strings.NewReader(line), Stdout: &stdout, Stderr: &stderr}, []string{"scan", "-t", "sshd", "../../testdata/logs/authlog"})
	if code != ExitFailure || !strings.Contains(stderr.String(), "interrupted") || !strings.Contains(stdout.String(), "# would blacklist") {
		t.Fatalf("exit %d, stderr %q, stdout %q", code, stderr.String(), stdout.String())
	}
}

// shardOf spreads addresses over the shards, IPv4 and IPv6 alike, and
// neighbouring ones too: a shard that got most of them would leave the
// other cores idle.
func TestShardOfSpreads(t *testing.T) {
	for _, shards := range []int{2, 3, 5} {
		s := newScanner(config.Default(), "sshd", io.Discard, shards)
		fam := famIndex("sshd")
		for _, family := range []string{"10.0.%d.%d", "2001:db8::%x:%x"} {
			counts := make([]int, shards)
			const n = 10_000
			for i := range n {
				ev := logwatch.Event{Addr: netip.MustParseAddr(fmt.Sprintf(family, i/256, i%256))}
				counts[s.shardOf(fam, &ev)]++
			}
			for i, c := range counts {
				if c < n/shards*8/10 || c > n/shards*12/10 {
					t.Errorf("%d shards, %s: shard %d got %d of %d addresses", shards, family, i, c, n)
				}
			}
		}
	}
}

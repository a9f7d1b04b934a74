package ctl

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func scanRun(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut}
	code := Main(env, append([]string{"scan"}, args...))
	return out.String(), errOut.String(), code
}

func TestScanAuthlog(t *testing.T) {
	out, errOut, code := scanRun(t, "", "-t", "sshd", "../testdata/logs/authlog")
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
	out, errOut, code := scanRun(t, "", "-c", conf, "../testdata/logs/authlog", "../testdata/logs/access.log", "../testdata/logs/maillog")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"../testdata/logs/maillog:2\tmail-recipient\t203.0.113.77\tmail to spamtrap trap@example.org [1] => blacklist (spamtrap)",
		"../testdata/logs/maillog:3\tmail-sent\ticloud.com\tmail from alice@example.org [1] => capture",
		"# capture icloud.com",
		"# would blacklist 1 addresses", // threshold 10: sshd bans nobody; 203.0.113.44 is whitelisted
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
	var out syncBuffer
	env := Env{Ctx: ctx, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}
	done := make(chan int, 1)
	go func() { done <- Main(env, []string{"scan", "-t", "sshd", "-f", path}) }()
	time.Sleep(300 * time.Millisecond) // tail opens the file and seeks to its end
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	for port := 1; port <= 3; port++ {
		fmt.Fprintf(f, "Nov 27 03:14:02 mx1 sshd[1]: Invalid user admin from 203.0.113.5 port %d\n", port)
	}
	f.Close()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "=> blacklist (sshd)") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	got := out.String()
	if !strings.Contains(got, "3\tssh-invalid-user\t203.0.113.5\tssh-invalid-user [3] => blacklist (sshd)") ||
		strings.Contains(got, "203.0.113.1") || !strings.Contains(got, "# blacklist 203.0.113.5") {
		t.Fatalf("output:\n%s", got)
	}
	if _, _, code := scanRun(t, "", "-f", "a", "b"); code != ExitUsage {
		t.Errorf("-f with two files: exit %d", code)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

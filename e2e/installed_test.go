// Package e2e holds the end-to-end test of an installed spfd: make
// install into a staging root, then the installed binaries, configuration
// and example run for real with the nftables backend, NSD and log files,
// all inside private network and mount namespaces.
package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/nsdtest"
	"github.com/spfd/spfd/internal/runtest"
)

// TestMain re-runs the package as root under unshare -n -m, with its own
// loopback and mounts, so nothing of the host is touched.
func TestMain(m *testing.M) {
	if code, ran := runtest.Unshare("SPFD_E2E_NS", "-n", "-m", "--propagation", "private"); ran {
		os.Exit(code)
	}
	if os.Getenv("SPFD_E2E_NS") == "1" {
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "ip link set lo up: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInstalledSpfd(t *testing.T) {
	if os.Getenv("SPFD_E2E_NS") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root and unshare (util-linux); CI runs as root and must run this test")
		}
		t.Skip("needs root for network and mount namespaces")
	}
	for _, tool := range []string{"make", "nft", "ip", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed", tool)
		}
	}
	dns := nsdtest.Start(t, "../testdata/spf-realworld")

	// Install into a staging root, then put its /etc and /usr/local, and
	// scratch /var/log, /var/db and /var/run, where the installed files
	// expect them, for this mount namespace only.
	stage := t.TempDir()
	run(t, "make", "-C", "..", "install", "DESTDIR="+stage)
	for _, m := range [][2]string{
		{filepath.Join(stage, "etc/spfd"), "/etc/spfd"},
		{filepath.Join(stage, "usr/local/sbin"), "/usr/local/sbin"},
	} {
		os.MkdirAll(m[1], 0o755)
		run(t, "mount", "--bind", m[0], m[1])
	}
	for _, dir := range []string{"/var/log", "/var/db", "/var/run"} {
		os.MkdirAll(dir, 0o755)
		run(t, "mount", "-t", "tmpfs", "tmpfs", dir)
	}
	// The installed example configuration, as an admin would adapt it:
	// the nftables backend, the test resolver, the test's ssh log.
	conf, err := os.ReadFile(filepath.Join(stage, "etc/spfd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(`
table white nftables "white"
table black nftables "black"
resolver %q
`, dns)
	confPath := "/var/db/spfd.conf"
	os.WriteFile(confPath, append(conf, local...), 0o644)
	os.WriteFile("/var/log/authlog", nil, 0o640)

	spfd, spfctl := "/usr/local/sbin/spfd", "/usr/local/sbin/spfctl"
	run(t, spfd, "-n", "-f", confPath)
	var stderr bytes.Buffer
	cmd := exec.Command(spfd, "-d", "-f", confPath)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}()
	ctl := func(args ...string) (string, error) {
		out, err := exec.Command(spfctl, args...).CombinedOutput()
		return string(out), err
	}
	waitFor(t, "spfd to answer", 10*time.Second, func() bool { _, err := ctl("show", "status"); return err == nil })

	// The example's domains walk against NSD: gmail.com's networks (via
	// _spf.google.com) reach the kernel's interval set.
	waitFor(t, "gmail.com's networks in white4", 15*time.Second, func() bool {
		out, _ := exec.Command("nft", "list", "set", "inet", "spfd", "white4").CombinedOutput()
		return strings.Contains(string(out), "74.125.0.0/16")
	})
	if out, _ := ctl("show", "domains"); !strings.Contains(out, "gmail.com") || !strings.Contains(out, "complete") {
		t.Errorf("show domains:\n%s", out)
	}

	// An ssh brute forcer in the followed log ends in black4h.
	f, _ := os.OpenFile("/var/log/authlog", os.O_WRONLY|os.O_APPEND, 0)
	for port := 4000; port < 4003; port++ {
		fmt.Fprintf(f, "Nov 27 03:14:02 mx1 sshd[%d]: Invalid user admin from 203.0.113.5 port %d\n", port, port) // a process per connection
	}
	f.Close()
	waitFor(t, "the attacker in black4h", 5*time.Second, func() bool {
		out, _ := exec.Command("nft", "list", "set", "inet", "spfd", "black4h").CombinedOutput()
		return strings.Contains(string(out), "203.0.113.5")
	})

	// SIGHUP reloads: a new static entry appears.
	os.WriteFile(confPath, append(append(conf, local...), "blacklist 198.51.100.0/24\n"...), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reloaded configuration's entry", 5*time.Second, func() bool {
		out, _ := exec.Command("nft", "list", "set", "inet", "spfd", "black4").CombinedOutput()
		return strings.Contains(string(out), "198.51.100.0/24")
	})
	if out, err := ctl("show", "stats"); err != nil || !strings.Contains(out, "packets") {
		t.Errorf("show stats: %v\n%s", err, out)
	}

	// SIGTERM stops it cleanly, leaving the sets in the kernel.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("spfd did not stop")
	}
	if out := run(t, "nft", "list", "set", "inet", "spfd", "black4h"); !strings.Contains(out, "203.0.113.5") {
		t.Errorf("sets flushed on stop:\n%s", out)
	}
}

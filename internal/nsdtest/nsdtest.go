// Package nsdtest runs NSD, the authoritative DNS server from Debian's nsd
// package, unprivileged on a loopback port for end-to-end tests.
package nsdtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Binary finds nsd. When it is missing the test is skipped, except under
// CI (CI=true), where .ci/run installs it and a skip would hide a gap.
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nsd", "/usr/sbin/nsd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nsd not installed (apt-get install nsd); CI must run this test")
	}
	t.Skip("nsd not installed (apt-get install nsd)")
	return ""
}

// Config returns an nsd.conf serving every *.zone file of zonesDir (the
// zone name is the file name less .zone) on addr, with its run files in
// runDir.
func Config(zonesDir, runDir, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	zones, err := filepath.Glob(filepath.Join(zonesDir, "*.zone"))
	if err != nil {
		return "", err
	}
	absZones, err := filepath.Abs(zonesDir)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `server:
	ip-address: %s@%s
	username: ""
	chroot: ""
	zonesdir: %q
	database: ""
	zonelistfile: %q
	pidfile: %q
	xfrdfile: %q
	xfrdir: %q
	logfile: %q
	server-count: 1
	rrl-ratelimit: 0
	tcp-count: 256
	verbosity: 0
remote-control:
	control-enable: no
`, host, port, absZones,
		filepath.Join(runDir, "zone.list"), filepath.Join(runDir, "nsd.pid"),
		filepath.Join(runDir, "xfrd.state"), runDir, filepath.Join(runDir, "nsd.log"))
	for _, z := range zones {
		base := filepath.Base(z)
		fmt.Fprintf(&b, "zone:\n\tname: %q\n\tzonefile: %q\n", strings.TrimSuffix(base, ".zone"), base)
	}
	return b.String(), nil
}

// Start runs nsd serving zonesDir on a free port of 127.0.0.1 and returns
// its address. NSD stops when the test ends.
func Start(t testing.TB, zonesDir string) string {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	for range 5 {
		addr, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		if err := start(t, bin, zonesDir, addr); err != nil {
			lastErr = err
			continue
		}
		return addr
	}
	t.Fatalf("nsd: %v", lastErr)
	return ""
}

func start(t testing.TB, bin, zonesDir, addr string) error {
	runDir := t.TempDir()
	conf, err := Config(zonesDir, runDir, addr)
	if err != nil {
		return err
	}
	confPath := filepath.Join(runDir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(bin, "-d", "-c", confPath)
	out, err := os.Create(filepath.Join(runDir, "stderr"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting nsd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if err := waitReady(addr, exited); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(runDir, "stderr"))
		nlog, _ := os.ReadFile(filepath.Join(runDir, "nsd.log"))
		return fmt.Errorf("%w\n%s%s", err, log, nlog)
	}
	t.Cleanup(stop)
	return nil
}

// waitReady asks for the SOA of "." until NSD answers (REFUSED is an answer).
func waitReady(addr string, exited <-chan error) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("nsd exited: %v", err)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, _, err := c.ExchangeContext(ctx, m, addr)
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nsd on %s did not answer within 15s", addr)
}

func freePort() (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		return "", err
	}
	ln.Close()
	return pc.LocalAddr().String(), nil
}

package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/nsdtest"
	"github.com/spfd/spfd/internal/runtest"
	"go4.org/netipx"
)

const zonesDir = "../../testdata/spf-realworld"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds spfd and spfctl once for all tests of this package.
func binaries(t *testing.T) (spfd, spfctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "spfd-e2e-bin")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"spfd", "spfctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, pkg), "../"+pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
		os.Chmod(binDir, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "spfd"), filepath.Join(binDir, "spfctl")
}

// instance is one spfd under test with its files.
type instance struct {
	t       *testing.T
	spfd    string
	spfctl  string
	dir     string
	conf    string
	sock    string
	cmd     *exec.Cmd
	exited  chan error
	stderr  *bytes.Buffer
	dnsAddr string
}

func newInstance(t *testing.T, dnsAddr, extra string) *instance {
	t.Helper()
	spfd, spfctl := binaries(t)
	dir := t.TempDir()
	in := &instance{t: t, spfd: spfd, spfctl: spfctl, dir: dir, conf: filepath.Join(dir, "spfd.conf"),
		sock: filepath.Join(dir, "spfd.sock"), dnsAddr: dnsAddr}
	in.writeConfig(extra)
	return in
}

func (in *instance) writeConfig(extra string) {
	in.t.Helper()
	conf := fmt.Sprintf(`state-directory %q
socket %q
resolver %q
walk timeout 1s
table white file %q
table black file %q
domain { google.com outlook.com }
%s
`, filepath.Join(in.dir, "state"), in.sock, in.dnsAddr, filepath.Join(in.dir, "white.txt"), filepath.Join(in.dir, "black.txt"), extra)
	if err := os.WriteFile(in.conf, []byte(conf), 0o644); err != nil {
		in.t.Fatal(err)
	}
}

func (in *instance) start() {
	in.t.Helper()
	in.stderr = &bytes.Buffer{}
	in.cmd = exec.Command(in.spfd, "-d", "-f", in.conf)
	in.cmd.Stderr = in.stderr
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	cmd, exited := in.cmd, make(chan error, 1)
	in.exited = exited
	go func() { exited <- cmd.Wait() }()
	in.t.Cleanup(func() { in.stop(syscall.SIGKILL) })
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, _, code := in.ctl("show", "status"); code == 0 {
			return
		}
		select {
		case err := <-in.exited:
			in.exited <- err
			in.t.Fatalf("spfd exited: %v\n%s", err, in.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	in.t.Fatalf("spfd did not answer within 10s\n%s", in.stderr)
}

func (in *instance) stop(sig syscall.Signal) error {
	if in.cmd == nil || in.cmd.Process == nil {
		return nil
	}
	select {
	case err := <-in.exited:
		in.exited <- err
		return err
	default:
	}
	in.cmd.Process.Signal(sig)
	select {
	case err := <-in.exited:
		in.exited <- err
		return err
	case <-time.After(15 * time.Second):
		in.cmd.Process.Kill()
		in.t.Errorf("spfd did not stop on %v", sig)
		return <-in.exited
	}
}

func (in *instance) ctl(args ...string) (stdout, stderr string, code int) {
	return runAs(in.t, nil, in.spfctl, append([]string{"-s", in.sock}, args...)...)
}

func runAs(t *testing.T, cred *syscall.Credential, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	stdout, stderr, code, err := runtest.Output(cmd)
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return stdout, stderr, code
}

func (in *instance) mustCtl(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.ctl(args...)
	if code != 0 {
		in.t.Fatalf("spfctl %v: exit %d: %s%s\nspfd log:\n%s", args, code, out, errOut, in.stderr)
	}
	return out
}

// waitFor polls cond for up to timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func expected(t *testing.T, domains ...string) []string {
	t.Helper()
	var b netipx.IPSetBuilder
	for _, d := range domains {
		data, err := os.ReadFile(filepath.Join(zonesDir, "expected", d+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.Fields(string(data)) {
			b.AddPrefix(netip.MustParsePrefix(f))
		}
	}
	set, _ := b.IPSet()
	var out []string
	for _, p := range set.Prefixes() {
		out = append(out, p.String())
	}
	return out
}

func fileLines(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Fields(string(data))
}

func TestDaemonEndToEnd(t *testing.T) {
	dns := nsdtest.Start(t, zonesDir)
	in := newInstance(t, dns, "")
	in.start()
	white := filepath.Join(in.dir, "white.txt")
	black := filepath.Join(in.dir, "black.txt")

	want := expected(t, "google.com", "outlook.com")
	waitFor(t, 10*time.Second, "the configured domains' walks", func() bool {
		return slices.Equal(fileLines(white), want)
	})
	if got := strings.Fields(in.mustCtl("show", "whitelist")); !slices.Equal(got, want) {
		t.Errorf("show whitelist:\n%v\nwant\n%v", got, want)
	}
	doms := in.mustCtl("show", "domains")
	for _, w := range []string{"google.com", "complete", "outlook.com", "config"} {
		if !strings.Contains(doms, w) {
			t.Errorf("show domains lacks %q:\n%s", w, doms)
		}
	}

	t.Run("add, whitelist wins, delete, expire", func(t *testing.T) {
		in.mustCtl("add", "black", "203.0.113.5")
		in.mustCtl("add", "black", "74.125.1.1")             // inside google's 74.125.0.0/16
		in.mustCtl("a", "b", "198.51.100.0/24", "ttl", "1h") // abbreviated
		waitFor(t, time.Second, "blacklist file", func() bool {
			return slices.Equal(fileLines(black), []string{"198.51.100.0/24", "203.0.113.5/32"})
		})
		v := in.mustCtl("show", "blacklist", "-v")
		for _, w := range []string{"74.125.1.1/32\tmanual\tnot pushed: whitelisted", "203.0.113.5/32\tmanual\tpushed", "198.51.100.0/24\tmanual(expires "} {
			if !strings.Contains(v, w) {
				t.Errorf("show blacklist -v lacks %q:\n%s", w, v)
			}
		}
		in.mustCtl("delete", "black", "198.51.100.0/24")
		if _, errOut, code := in.ctl("delete", "black", "198.51.100.0/24"); code != 1 || !strings.Contains(errOut, "not in the blacklist") {
			t.Errorf("second delete: exit %d %q", code, errOut)
		}
		out := in.mustCtl("expire", "203.0.113.5")
		if !strings.Contains(out, "black\t203.0.113.5/32") {
			t.Errorf("expire output %q", out)
		}
		waitFor(t, time.Second, "blacklist file empty", func() bool { return len(fileLines(black)) == 0 })
		if _, errOut, code := in.ctl("add", "white", "192.0.2.1/24"); code != 2 || !strings.Contains(errOut, "host bits") {
			t.Errorf("bad prefix: exit %d %q", code, errOut)
		}
	})

	t.Run("domain add walks and whitelists", func(t *testing.T) {
		out := in.mustCtl("domain", "add", "icloud.com")
		if !strings.Contains(out, "icloud.com\tcomplete\t13 networks") {
			t.Errorf("domain add output %q", out)
		}
		want := expected(t, "google.com", "outlook.com", "icloud.com")
		waitFor(t, time.Second, "icloud networks in the file", func() bool { return slices.Equal(fileLines(white), want) })
		if _, errOut, code := in.ctl("domain", "delete", "google.com"); code != 1 || !strings.Contains(errOut, "comes from config") {
			t.Errorf("deleting a configured domain: exit %d %q", code, errOut)
		}
		out = in.mustCtl("rewalk", "icloud.com")
		if !strings.Contains(out, "icloud.com\tcomplete") {
			t.Errorf("rewalk output %q", out)
		}
	})

	t.Run("reload keeps the old configuration when the new one is bad", func(t *testing.T) {
		in.writeConfig("whitelist 192.0.2.0/24\nbogus keyword\n")
		_, errOut, code := in.ctl("reload")
		if code != 1 || !strings.Contains(errOut, "unknown keyword") || !strings.Contains(errOut, "spfd.conf:") {
			t.Errorf("bad reload: exit %d %q", code, errOut)
		}
		in.writeConfig("whitelist 192.0.2.0/24\n")
		in.mustCtl("reload")
		waitFor(t, time.Second, "static whitelist entry", func() bool { return slices.Contains(fileLines(white), "192.0.2.0/24") })
		// SIGHUP reloads too.
		in.writeConfig("whitelist 192.0.2.0/24\nwhitelist 198.51.100.7\n")
		in.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, 2*time.Second, "SIGHUP reload", func() bool { return slices.Contains(fileLines(white), "198.51.100.7/32") })
	})

	t.Run("restart keeps state", func(t *testing.T) {
		in.mustCtl("add", "black", "203.0.113.99", "ttl", "2h")
		if err := in.stop(syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM exit: %v\n%s", err, in.stderr)
		}
		in.start()
		v := in.mustCtl("show", "blacklist", "-v")
		if !strings.Contains(v, "203.0.113.99/32\tmanual(expires") {
			t.Errorf("after restart: %q", v)
		}
		doms := in.mustCtl("show", "domains")
		if !strings.Contains(doms, "icloud.com") || !strings.Contains(doms, "runtime") {
			t.Errorf("runtime domain lost:\n%s", doms)
		}
		// The restored walk results are pushed before any new walk.
		if !slices.Contains(fileLines(white), "17.58.0.0/16") {
			t.Errorf("icloud networks missing after restart")
		}
	})

	t.Run("a second instance refuses to start", func(t *testing.T) {
		_, errOut, code := runAs(t, nil, in.spfd, "-d", "-f", in.conf)
		if code != 1 || !strings.Contains(errOut, "another spfd is running") {
			t.Errorf("second instance: exit %d %q", code, errOut)
		}
	})

	t.Run("status and stats", func(t *testing.T) {
		st := in.mustCtl("show", "status")
		for _, w := range []string{"backend file", "whitelist", "domains 3", "in sync"} {
			if !strings.Contains(st, w) {
				t.Errorf("status lacks %q:\n%s", w, st)
			}
		}
		js := in.mustCtl("-j", "show", "status")
		if !strings.Contains(js, `"backend":"file"`) {
			t.Errorf("status -j: %s", js)
		}
		stats := in.mustCtl("show", "stats")
		if !strings.Contains(stats, "white "+white+": held") {
			t.Errorf("stats: %s", stats)
		}
	})
}

// TestDaemonSIGKILLLosesNothingAcknowledged adds entries one after another
// and kills spfd with SIGKILL in the middle: every add that spfctl saw
// acknowledged must be there after the restart.
func TestDaemonSIGKILLLosesNothingAcknowledged(t *testing.T) {
	dns := nsdtest.Start(t, zonesDir)
	in := newInstance(t, dns, "")
	in.start()
	var acked []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 2000; i++ {
			addr := fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256)
			if _, _, code := in.ctl("add", "black", addr); code != 0 {
				return // the daemon is gone
			}
			acked = append(acked, addr+"/32")
		}
	}()
	time.Sleep(700 * time.Millisecond)
	in.cmd.Process.Signal(syscall.SIGKILL)
	<-done
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before the kill")
	}
	in.start()
	v := in.mustCtl("show", "blacklist", "-v")
	var missing []string
	for _, a := range acked {
		if !strings.Contains(v, a+"\t") {
			missing = append(missing, a)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged entries lost after SIGKILL, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	t.Logf("%d acknowledged adds survived SIGKILL", len(acked))
}

// TestDaemonPeerCredentials runs spfctl as an unprivileged user in the
// socket's group: it may look, not change. Needs root to switch users.
func TestDaemonPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test must run there")
		}
		t.Skip("needs root to run spfctl as another user")
	}
	dns := nsdtest.Start(t, zonesDir)
	in := newInstance(t, dns, "")
	in.writeConfig("")
	conf, _ := os.ReadFile(in.conf)
	conf = bytes.Replace(conf, []byte(fmt.Sprintf("socket %q", in.sock)), []byte(fmt.Sprintf("socket %q group nogroup", in.sock)), 1)
	os.WriteFile(in.conf, conf, 0o644)
	// The unprivileged user must reach the socket's directory.
	for d := in.dir; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	in.start()
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	if _, errOut, code := runAs(t, nobody, in.spfctl, "-s", in.sock, "show", "status"); code != 0 {
		t.Fatalf("read-only command as nobody: exit %d %s", code, errOut)
	}
	_, errOut, code := runAs(t, nobody, in.spfctl, "-s", in.sock, "add", "white", "0.0.0.0/1")
	if code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("mutating command as nobody: exit %d %q", code, errOut)
	}
	if v := in.mustCtl("show", "whitelist", "-v"); strings.Contains(v, "0.0.0.0/1") {
		t.Fatal("the refused entry was added")
	}
	// A user outside the group cannot even connect.
	other := &syscall.Credential{Uid: 65533, Gid: 65533}
	if _, _, code := runAs(t, other, in.spfctl, "-s", in.sock, "show", "status"); code != 1 {
		t.Errorf("user outside the group: exit %d, want 1", code)
	}
}

func TestCheckConfig(t *testing.T) {
	spfd, _ := binaries(t)
	if _, errOut, code := runAs(t, nil, spfd, "-n", "-f", "../../etc/spfd.conf"); code != 0 {
		t.Errorf("spfd -n etc/spfd.conf: exit %d %s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("domain gmail.com\nwalk grace never\n"), 0o644)
	_, errOut, code := runAs(t, nil, spfd, "-n", "-f", bad)
	if code != 1 || !strings.Contains(errOut, "bad.conf:2:") {
		t.Errorf("bad config: exit %d %q", code, errOut)
	}
	if _, _, code := runAs(t, nil, spfd, "-n", "-D", "novalue", "-f", bad); code != 2 {
		t.Errorf("bad -D: exit %d, want 2", code)
	}
	dir := t.TempDir()
	macro := filepath.Join(dir, "m.conf")
	os.WriteFile(macro, []byte("dir = \"/nonexistent\"\nstate-directory $dir\n"), 0o644)
	if _, errOut, code := runAs(t, nil, spfd, "-n", "-D", "dir=/var/db/x", "-f", macro); code != 0 {
		t.Errorf("-D macro: exit %d %s", code, errOut)
	}
}

// TestDaemonLogMining: spfd follows a growing sshd log and an httpd log;
// offenders reach show blacklist and the table file within a second,
// whitelisted addresses never do, and rotation loses nothing.
func TestDaemonLogMining(t *testing.T) {
	dns := nsdtest.Start(t, zonesDir)
	dir := t.TempDir()
	authlog := filepath.Join(dir, "authlog")
	access := filepath.Join(dir, "access.log")
	os.WriteFile(authlog, nil, 0o644)
	os.WriteFile(access, nil, 0o644)
	in := newInstance(t, dns, fmt.Sprintf(`whitelist 198.51.100.0/24
log sshd file %q threshold 3 within 1h ttl 2h
log httpd file %q`, authlog, access))
	in.start()
	black := filepath.Join(in.dir, "black.txt")
	waitFor(t, 10*time.Second, "walks", func() bool { return len(fileLines(filepath.Join(in.dir, "white.txt"))) > 0 })

	appendLines := func(path string, lines ...string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, l := range lines {
			fmt.Fprintln(f, l)
		}
	}
	attack := func(ip string, port int) []string {
		return []string{
			fmt.Sprintf("Nov 27 03:14:02 mx1 sshd[%d]: Invalid user admin from %s port %d", port, ip, port),
			fmt.Sprintf("Nov 27 03:14:04 mx1 sshd[%d]: Failed password for invalid user admin from %s port %d ssh2", port, ip, port),
		}
	}
	// Two attempts: not yet.
	appendLines(authlog, append(attack("203.0.113.5", 1001), attack("203.0.113.5", 1002)...)...)
	// A whitelisted address attacking as hard never gets in.
	for p := 2000; p < 2010; p++ {
		appendLines(authlog, attack("198.51.100.9", p)...)
	}
	time.Sleep(300 * time.Millisecond)
	if got := fileLines(black); len(got) != 0 {
		t.Fatalf("blacklisted early: %v", got)
	}
	start := time.Now()
	appendLines(authlog, attack("203.0.113.5", 1003)...)
	waitFor(t, time.Second, "the third attempt to blacklist", func() bool { return slices.Equal(fileLines(black), []string{"203.0.113.5/32"}) })
	t.Logf("log line to table file: %v", time.Since(start))

	// Rotation by rename and create: the line written to the old file
	// just before rotation, and the new file's, both count.
	os.Rename(authlog, authlog+".0")
	appendLines(authlog+".0", attack("203.0.113.6", 3001)...)
	os.WriteFile(authlog, nil, 0o644)
	appendLines(authlog, append(attack("203.0.113.6", 3002), attack("203.0.113.6", 3003)...)...)
	appendLines(access, `www 2001:db8::66 - - [27/Nov/2026:03:30:00 +0000] "GET /wp-login.php HTTP/1.1" 404 0 "-" "x"`)
	want := []string{"203.0.113.5/32", "203.0.113.6/32", "2001:db8::66/128"}
	waitFor(t, 2*time.Second, "rotated log and httpd probe", func() bool { return slices.Equal(fileLines(black), want) })

	v := in.mustCtl("show", "blacklist", "-v")
	for _, w := range []string{"203.0.113.5/32\tlog:sshd(expires ", "2001:db8::66/128\tlog:httpd-probe(expires "} {
		if !strings.Contains(v, w) {
			t.Errorf("show blacklist -v lacks %q:\n%s", w, v)
		}
	}
	if strings.Contains(v, "198.51.100.9") {
		t.Errorf("whitelisted attacker in the blacklist:\n%s", v)
	}
	if got := strings.Fields(in.mustCtl("show", "blacklist")); !slices.Equal(got, want) {
		t.Errorf("show blacklist %v", got)
	}

	// Restart: the positions are kept, nothing is read twice.
	in.stop(syscall.SIGTERM)
	appendLines(authlog, attack("203.0.113.7", 4001)...)
	in.start()
	appendLines(authlog, append(attack("203.0.113.7", 4002), attack("203.0.113.7", 4003)...)...)
	// The table holds the cover: 203.0.113.6 and .7 make 203.0.113.6/31.
	waitFor(t, 2*time.Second, "attempts across a restart", func() bool {
		return slices.Contains(fileLines(black), "203.0.113.6/31")
	})
	if v := in.mustCtl("show", "blacklist", "-v"); !strings.Contains(v, "203.0.113.7/32\tlog:sshd") {
		t.Errorf("show blacklist -v:\n%s", v)
	}
}

// TestDaemonNFTables runs spfd with the nftables backend in a private
// network namespace and checks the kernel's sets with nft.
func TestDaemonNFTables(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root; this test must run there")
		}
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"unshare", "nsenter", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (util-linux, nftables)", tool)
		}
	}
	spfd, _ := binaries(t)
	in := newInstance(t, "127.0.0.1:1", "")
	conf := fmt.Sprintf(`state-directory %q
socket %q
resolver 127.0.0.1:1
table white nftables "white"
table black nftables "black"
nftables-rules ports { 25 }
whitelist { 192.0.2.0/24 2001:db8::/32 }
`, filepath.Join(in.dir, "state"), in.sock)
	os.WriteFile(in.conf, []byte(conf), 0o644)
	in.stderr = &bytes.Buffer{}
	in.cmd = exec.Command("unshare", "-n", spfd, "-d", "-f", in.conf)
	in.cmd.Stderr = in.stderr
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited := in.cmd, make(chan error, 1)
	in.exited = exited
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { in.stop(syscall.SIGTERM) })
	waitFor(t, 10*time.Second, "spfd to answer", func() bool { _, _, code := in.ctl("show", "status"); return code == 0 })
	pid := strconv.Itoa(in.cmd.Process.Pid) // unshare execs spfd in place
	nftIn := func(args ...string) string {
		out, err := exec.Command("nsenter", append([]string{"-t", pid, "-n", "nft"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	in.mustCtl("add", "black", "203.0.113.5")
	in.mustCtl("add", "black", "198.51.100.0/24")
	in.mustCtl("add", "black", "192.0.2.77") // whitelisted: never in the kernel's blacklist
	waitFor(t, 2*time.Second, "the blacklist in the kernel", func() bool {
		return strings.Contains(nftIn("list", "set", "inet", "spfd", "black4h"), "203.0.113.5")
	})
	if out := nftIn("list", "set", "inet", "spfd", "black4"); !strings.Contains(out, "198.51.100.0/24") {
		t.Errorf("black4:\n%s", out)
	}
	if out := nftIn("list", "table", "inet", "spfd"); strings.Contains(out, "192.0.2.77") || !strings.Contains(out, "2001:db8::/32") {
		t.Errorf("table:\n%s", out)
	}
	// nft -f with "flush ruleset": spfd's next sync brings it all back.
	nftIn("flush", "ruleset")
	in.mustCtl("add", "black", "203.0.113.9")
	waitFor(t, 2*time.Second, "the table restored after flush ruleset", func() bool {
		out, _ := exec.Command("nsenter", "-t", pid, "-n", "nft", "list", "set", "inet", "spfd", "black4h").CombinedOutput()
		return strings.Contains(string(out), "203.0.113.5") && strings.Contains(string(out), "203.0.113.9")
	})
	if st := in.mustCtl("show", "stats"); !strings.Contains(st, "black black: held 4, pushed") || !strings.Contains(st, "packets 0") {
		t.Errorf("stats:\n%s", st)
	}
	// Two prefixes that touch are one range element in nftables: status
	// and stats agree on the prefixes, and stats names the elements.
	in.mustCtl("add", "black", "100.64.0.0/24")
	in.mustCtl("add", "black", "100.64.1.0/25")
	var status, stats string
	waitFor(t, 2*time.Second, "the touching prefixes pushed", func() bool {
		status, stats = in.mustCtl("show", "status"), in.mustCtl("show", "stats")
		return strings.Contains(status, "blacklist 6 entries, ")
	})
	var pushed, statsPushed, elements int
	for _, l := range strings.Split(status, "\n") {
		fmt.Sscanf(l, "blacklist 6 entries, %d prefixes pushed", &pushed)
	}
	for _, l := range strings.Split(stats, "\n") {
		fmt.Sscanf(l, "black black: held 6, pushed %d prefixes as %d table elements", &statsPushed, &elements)
	}
	if pushed == 0 || pushed != statsPushed || elements >= pushed {
		t.Errorf("status says %d prefixes pushed, stats %d prefixes as %d elements (want equal prefixes, fewer elements):\n%s\n%s",
			pushed, statsPushed, elements, status, stats)
	}

	// A blacklisted client knocks on port 25 in spfd's namespace: the
	// report names it as the top blocked, and its source's hit rate.
	// (Loopback is never blacklisted: the client and server get
	// addresses of their own on lo.)
	for _, args := range [][]string{{"link", "set", "lo", "up"}, {"addr", "add", "198.18.0.66/32", "dev", "lo"}, {"addr", "add", "198.18.0.1/32", "dev", "lo"}} {
		if out, err := exec.Command("nsenter", append([]string{"-t", pid, "-n", "ip"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	in.mustCtl("add", "black", "198.18.0.66")
	waitFor(t, 2*time.Second, "198.18.0.66 in the kernel", func() bool {
		return strings.Contains(nftIn("list", "set", "inet", "spfd", "black4h"), "198.18.0.66")
	})
	if err := runtest.DialFromNetns("/proc/"+pid+"/ns/net", "198.18.0.66", "198.18.0.1:25"); err != nil {
		t.Fatal(err)
	}
	text := in.mustCtl("report")
	for _, want := range []string{"spfd report for ", `(?m)^black +manual +7 +1 +14\.3%$`, `(?m)^198\.18\.0\.66/32 +[1-9][0-9]* +manual$`} {
		if !strings.HasPrefix(want, "(?m)") && !strings.Contains(text, want) || strings.HasPrefix(want, "(?m)") && !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("spfctl report lacks %s:\n%s", want, text)
		}
	}
	svg, page := filepath.Join(in.dir, "report.svg"), filepath.Join(in.dir, "report.html")
	in.mustCtl("report", "-d", "7", "-o", svg)
	in.mustCtl("report", "-o", page)
	if b, err := os.ReadFile(svg); err != nil || !bytes.Contains(b, []byte(`<svg xmlns="http://www.w3.org/2000/svg"`)) || bytes.Count(b, []byte("<rect ")) != 2*7*24 {
		t.Errorf("report.svg (%v):\n%.500s", err, b)
	}
	if b, err := os.ReadFile(page); err != nil || !bytes.Contains(b, []byte("<td>198.18.0.66/32</td>")) {
		t.Errorf("report.html (%v):\n%.2000s", err, b)
	}
}

// TestDaemonFeedsAndExport loads a blacklist feed over HTTP, keeps its
// last good copy when the server fails, and exports the pushed list in
// spamd-setup's format.
func TestDaemonFeedsAndExport(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("ETag", `"1"`)
		fmt.Fprint(w, "# drop list\n203.0.113.0/24\n198.18.0.0 - 198.18.0.255\nbogus line\n192.0.2.0/24\n")
	}))
	defer srv.Close()
	dir := t.TempDir()
	export := filepath.Join(dir, "black-export.txt")
	in := newInstance(t, "127.0.0.1:1", fmt.Sprintf(`whitelist 192.0.2.0/24
feed drop black url %q refresh 1m
export black %q`, srv.URL, export))
	conf, _ := os.ReadFile(in.conf)
	os.WriteFile(in.conf, bytes.Replace(conf, []byte("domain { google.com outlook.com }"), nil, 1), 0o644)
	in.start()
	black := filepath.Join(in.dir, "black.txt")
	want := []string{"198.18.0.0/24", "203.0.113.0/24"} // 192.0.2.0/24 is whitelisted
	waitFor(t, 5*time.Second, "the feed in the table", func() bool { return slices.Equal(fileLines(black), want) })
	waitFor(t, 2*time.Second, "the export", func() bool { return slices.Equal(fileLines(export), want) })
	if v := in.mustCtl("show", "blacklist", "-v"); !strings.Contains(v, "203.0.113.0/24\tfeed:drop\tpushed") ||
		!strings.Contains(v, "192.0.2.0/24\tfeed:drop\tnot pushed: whitelisted") {
		t.Errorf("show blacklist -v:\n%s", v)
	}
	// The server fails: a reload refetches, and the last good copy stays.
	failing.Store(true)
	in.mustCtl("reload")
	time.Sleep(300 * time.Millisecond)
	if got := fileLines(black); !slices.Equal(got, want) {
		t.Errorf("after a failed fetch: %v", got)
	}
	if st := in.mustCtl("show", "status"); !strings.Contains(st, "feed drop") {
		t.Errorf("the failure is not in show status:\n%s", st)
	}
}

// TestDaemonBGPTwoInstances runs two spfd that peer over BGP on
// 127.0.0.2 and 127.0.0.3: a blacklist entry found on one reaches the
// other's table, attributed to its neighbor; what the other receives is
// not announced back.
func TestDaemonBGPTwoInstances(t *testing.T) {
	a := newInstance(t, "127.0.0.1:1", `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 } port 11890
bgp neighbor 127.0.0.3 as 65002 local-address 127.0.0.2 port 11891
bgp announce { black }`)
	b := newInstance(t, "127.0.0.1:1", `bgp as 65002 router-id 127.0.0.3 listen { 127.0.0.3 } port 11891 hold 1s
bgp neighbor 127.0.0.2 as 65001 local-address 127.0.0.3 port 11890
bgp announce { black }`)
	for _, in := range []*instance{a, b} {
		conf, _ := os.ReadFile(in.conf)
		os.WriteFile(in.conf, bytes.Replace(conf, []byte("domain { google.com outlook.com }"), nil, 1), 0o644)
		in.start()
	}
	waitFor(t, 30*time.Second, "the session", func() bool {
		out, _, _ := b.ctl("show", "neighbors")
		return strings.Contains(out, "established")
	})
	a.mustCtl("add", "black", "203.0.113.5")
	a.mustCtl("add", "black", "2001:db8::bad")
	bBlack := filepath.Join(b.dir, "black.txt")
	waitFor(t, 10*time.Second, "a's finding in b's table", func() bool {
		return slices.Equal(fileLines(bBlack), []string{"203.0.113.5/32", "2001:db8::bad/128"})
	})
	if rib := b.mustCtl("show", "rib"); !strings.Contains(rib, "127.0.0.2\tblack\t203.0.113.5/32") {
		t.Errorf("show rib on b:\n%s", rib)
	}
	if v := b.mustCtl("show", "blacklist", "-v"); !strings.Contains(v, "203.0.113.5/32\tfeed:bgp:127.0.0.2\tpushed") {
		t.Errorf("show blacklist -v on b:\n%s", v)
	}
	// b's own finding goes to a; a's routes are not sent back to a.
	b.mustCtl("add", "black", "198.51.100.66")
	waitFor(t, 10*time.Second, "b's finding in a's table", func() bool {
		return slices.Contains(fileLines(filepath.Join(a.dir, "black.txt")), "198.51.100.66/32")
	})
	if rib := a.mustCtl("show", "rib"); strings.Contains(rib, "203.0.113.5") {
		t.Errorf("a received its own finding back:\n%s", rib)
	}
	// A delete on a withdraws the route; b drops the entry.
	a.mustCtl("delete", "black", "203.0.113.5/32")
	waitFor(t, 10*time.Second, "the withdrawal", func() bool {
		return !slices.Contains(fileLines(bBlack), "203.0.113.5/32")
	})
}

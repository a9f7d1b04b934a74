package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func buildBinaries(t *testing.T) (spfd, spfctl string) {
	t.Helper()
	dir := t.TempDir()
	for _, b := range []string{"spfd", "spfctl"} {
		run(t, "go", "build", "-o", filepath.Join(dir, b), "../cmd/"+b)
	}
	return filepath.Join(dir, "spfd"), filepath.Join(dir, "spfctl")
}

// startBackground runs a program until the test ends, or until the
// function it returns stops it (SIGTERM, then SIGKILL after 5s).
func startBackground(t *testing.T, name string, args ...string) (stop func()) {
	t.Helper()
	cmd := exec.Command(name, args...)
	log, _ := os.Create(filepath.Join(t.TempDir(), filepath.Base(name)+".log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestOpenBGPDInterop peers spfd with Debian's OpenBGPD, as a bgp-spamd
// route server would be: spfd receives the route bgpd announces with
// 65066:666 into its blacklist, and bgpctl shows spfd's own finding with
// that community. Both run in this test's network namespace, on
// 127.0.0.2 and 127.0.0.4.
func TestOpenBGPDInterop(t *testing.T) {
	spfd, spfctl, dir := bgpSetup(t)
	bgpdSock, _ := startBGPD(t, dir, "bgpd", "127.0.0.4", 65066, "",
		"192.0.2.99/32", "0.0.0.0/0", "198.51.100.0/23")
	// A second route server, B, that must get spfd's own findings and
	// never the routes spfd received from A. Its AS differs from A's, or
	// bgpd would drop a passed-on route for the loop in its AS path and
	// the check would prove nothing.
	bgpdBSock, _ := startBGPD(t, dir, "bgpd-b", "127.0.0.5", 65067, "")

	ctl, _ := startSpfd(t, spfd, spfctl, dir, `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.4 as 65066 local-address 127.0.0.2
bgp neighbor 127.0.0.5 as 65067 local-address 127.0.0.2
bgp announce { black }
`)
	waitFor(t, "bgpd's route in spfd", 30*time.Second, func() bool {
		return strings.Contains(ctl("show", "rib"), "127.0.0.4\tblack\t192.0.2.99/32")
	})
	waitFor(t, "the route in spfd's table", 5*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "state", "black.txt"))
		return strings.Contains(string(data), "192.0.2.99/32")
	})
	// A blacklist route for everything is refused: it would block the
	// whole Internet; so is a /23, broader than bgp prefixlen black's
	// default /24, though it passes the walk floor.
	waitFor(t, "bgpd's broad routes received", 10*time.Second, func() bool {
		rib := ctl("show", "rib")
		return strings.Contains(rib, "0.0.0.0/0") && strings.Contains(rib, "198.51.100.0/23")
	})
	time.Sleep(500 * time.Millisecond) // a route taken would be pushed by now
	if data, _ := os.ReadFile(filepath.Join(dir, "state", "black.txt")); strings.Contains(string(data), "0.0.0.0/") || strings.Count(string(data), "\n") != 1 {
		t.Errorf("black table after 0.0.0.0/0 and 198.51.100.0/23 with 65066:666:\n%s", data)
	}
	if out := ctl("add", "black", "203.0.113.77"); !strings.Contains(out, "added") {
		t.Fatalf("spfctl add: %s", out)
	}
	waitFor(t, "spfd's finding in bgpd's RIB with 65066:666", 15*time.Second, func() bool {
		out, _ := exec.Command("bgpctl", "-s", bgpdSock, "show", "rib", "community", "65066:666").CombinedOutput()
		return strings.Contains(string(out), "203.0.113.77/32")
	})
	// Three speakers: B gets spfd's finding, and not A's route, which
	// spfd only received (a speaker's default export would pass it on with
	// AS path "65001 65066").
	waitFor(t, "spfd's finding in bgpd B's RIB", 15*time.Second, func() bool {
		out, _ := exec.Command("bgpctl", "-s", bgpdBSock, "show", "rib").CombinedOutput()
		return strings.Contains(string(out), "203.0.113.77/32")
	})
	time.Sleep(2 * time.Second) // a route passed on would have come with the finding
	if out, _ := exec.Command("bgpctl", "-s", bgpdBSock, "show", "rib").CombinedOutput(); strings.Contains(string(out), "192.0.2.99") {
		t.Errorf("spfd passed A's route on to B:\n%s", out)
	}
}

// TestOpenBGPDMD5 checks TCP-MD5 both ways against OpenBGPD: bgpd A has
// the same password as spfd and its session comes up; bgpd B, which
// spfd also expects to sign with that password, has none, and its
// session never comes up, so its route never arrives.
func TestOpenBGPDMD5(t *testing.T) {
	spfd, spfctl, dir := bgpSetup(t)
	startBGPD(t, dir, "signed", "127.0.0.4", 65066, "s3cret", "192.0.2.44/32")
	unsigned, _ := startBGPD(t, dir, "unsigned", "127.0.0.5", 65066, "", "192.0.2.55/32")

	ctl, _ := startSpfd(t, spfd, spfctl, dir, `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.4 as 65066 password s3cret local-address 127.0.0.2
bgp neighbor 127.0.0.5 as 65066 password s3cret local-address 127.0.0.2
`)
	waitFor(t, "the signed session's route in spfd", 30*time.Second, func() bool {
		return strings.Contains(ctl("show", "rib"), "192.0.2.44/32")
	})
	time.Sleep(3 * time.Second) // bgpd retries its connection every few seconds
	if rib := ctl("show", "rib"); strings.Contains(rib, "192.0.2.55") {
		t.Errorf("a route came over the unsigned session:\n%s", rib)
	}
	state := func(addr string) string {
		for _, l := range strings.Split(ctl("show", "neighbors"), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == addr {
				return f[2]
			}
		}
		return ""
	}
	if s := state("127.0.0.4"); !strings.EqualFold(s, "established") {
		t.Errorf("the signed session is %q", s)
	}
	if s := state("127.0.0.5"); strings.EqualFold(s, "established") {
		t.Errorf("the unsigned session is established")
	}
	if out, _ := exec.Command("bgpctl", "-s", unsigned, "show", "rib").CombinedOutput(); strings.Contains(string(out), "65001") {
		t.Errorf("the unsigned bgpd got routes from spfd:\n%s", out)
	}
}

// startSpfd runs spfd on the file backend in dir with this BGP
// configuration and returns a function that runs spfctl against it.
func startSpfd(t *testing.T, spfd, spfctl, dir, bgpConf string) (ctl func(args ...string) string, stop func()) {
	t.Helper()
	sock := filepath.Join(dir, "spfd.sock")
	conf := filepath.Join(dir, "spfd.conf")
	body := `state-directory "` + filepath.Join(dir, "state") + `"
socket "` + sock + `"
resolver 127.0.0.1:1
` + bgpConf
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	stop = startBackground(t, spfd, "-d", "-f", conf)
	return func(args ...string) string {
		out, _ := exec.Command(spfctl, append([]string{"-s", sock}, args...)...).CombinedOutput()
		return string(out)
	}, stop
}

// startBGPD runs an OpenBGPD in AS asn on addr that peers with spfd on
// 127.0.0.2 and announces routes with the blacklist community; it returns
// bgpctl's socket and a function that stops it.
func startBGPD(t *testing.T, dir, name, addr string, asn int, password string, routes ...string) (sock string, stop func()) {
	t.Helper()
	sock = filepath.Join(dir, name+".sock")
	conf := filepath.Join(dir, name+".conf")
	md5 := ""
	if password != "" {
		md5 = "\ttcp md5sig password " + password + "\n"
	}
	var networks strings.Builder
	for _, r := range routes {
		networks.WriteString("network " + r + " set community 65066:666\n")
	}
	os.WriteFile(conf, []byte(`AS `+strconv.Itoa(asn)+`
router-id `+addr+`
listen on `+addr+`
fib-update no
socket "`+sock+`"
`+networks.String()+`neighbor 127.0.0.2 {
	remote-as 65001
	local-address `+addr+`
`+md5+`}
allow from any
allow to any
`), 0o644)
	run(t, "bgpd", "-n", "-f", conf)
	stop = startBackground(t, "bgpd", "-d", "-f", conf)
	waitFor(t, name, 10*time.Second, func() bool { return exec.Command("bgpctl", "-s", sock, "show", "summary").Run() == nil })
	return sock, stop
}

// TestOpenBGPDMaxPrefix: a neighbor that sends more routes than its
// max-prefix has its session torn down and never gets the routes past the
// limit into the blacklist; a neighbor under the limit is untouched.
func TestOpenBGPDMaxPrefix(t *testing.T) {
	spfd, spfctl, dir := bgpSetup(t)
	startBGPD(t, dir, "modest", "127.0.0.4", 65066, "", "192.0.2.44/32")
	flood, _ := startBGPD(t, dir, "flood", "127.0.0.6", 65066, "", "192.0.2.61/32", "192.0.2.62/32", "192.0.2.63/32")
	ctl, _ := startSpfd(t, spfd, spfctl, dir, `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 }
bgp neighbor 127.0.0.4 as 65066 local-address 127.0.0.2 max-prefix 2
bgp neighbor 127.0.0.6 as 65066 local-address 127.0.0.2 max-prefix 2
`)
	waitFor(t, "the modest neighbor's route", 30*time.Second, func() bool {
		return strings.Contains(ctl("show", "rib"), "192.0.2.44/32")
	})
	waitFor(t, "bgpd told of the limit", 30*time.Second, func() bool {
		out, _ := exec.Command("bgpctl", "-s", flood, "show", "neighbor").CombinedOutput()
		return strings.Contains(strings.ToLower(string(out)), "max-prefix") || strings.Contains(strings.ToLower(string(out)), "maximum number of prefixes")
	})
	// show neighbors says why: the Cease spfd sent, kept as the last error.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("show neighbors:\n%s", ctl("show", "neighbors"))
		}
	})
	waitFor(t, "the limit in show neighbors", 10*time.Second, func() bool {
		for _, l := range strings.Split(ctl("show", "neighbors"), "\n") {
			if strings.HasPrefix(l, "127.0.0.6 ") && strings.Contains(l, "maximum number of prefix") {
				return true
			}
		}
		return false
	})
	if l := ctl("show", "neighbors"); strings.Contains(l, "127.0.0.4 ") && !strings.Contains(l, "-\n") {
		t.Errorf("the modest neighbor has an error:\n%s", l)
	}
	rib := ctl("show", "rib")
	if n := strings.Count(rib, "127.0.0.6\t"); n > 2 {
		t.Errorf("%d routes held from a neighbor limited to 2:\n%s", n, rib)
	}
	if out, _ := exec.Command("bgpctl", "-s", flood, "show", "neighbor").CombinedOutput(); t.Failed() {
		t.Logf("bgpd flood:\n%s", out)
	}
}

// bgpSetup is what every OpenBGPD test needs: the namespace TestMain made,
// bgpd installed, spfd built, a directory bgpd may read and bgpd's
// privilege-separation directory.
func bgpSetup(t *testing.T) (spfd, spfctl, dir string) {
	t.Helper()
	if os.Getenv("SPFD_E2E_NS") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root and unshare; CI must run this test")
		}
		t.Skip("needs root for a network namespace")
	}
	for _, tool := range []string{"bgpd", "bgpctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install openbgpd)", tool)
		}
	}
	spfd, spfctl = buildBinaries(t)
	dir = t.TempDir()
	os.Chmod(dir, 0o755)
	os.MkdirAll("/run/openbgpd", 0o755)
	return spfd, spfctl, dir
}

// TestOpenBGPDHold: routes of a neighbor whose session went down are held
// for the hold time, with the expiry in show blacklist -v, also across a
// restart of spfd while the neighbor is still down; then they go.
func TestOpenBGPDHold(t *testing.T) {
	spfd, spfctl, dir := bgpSetup(t)
	_, stopBGPD := startBGPD(t, dir, "peer", "127.0.0.4", 65066, "", "192.0.2.44/32")
	conf := `bgp as 65001 router-id 127.0.0.2 listen { 127.0.0.2 } hold 6s
bgp neighbor 127.0.0.4 as 65066 local-address 127.0.0.2
`
	ctl, stopSpfd := startSpfd(t, spfd, spfctl, dir, conf)
	black := func() string {
		data, _ := os.ReadFile(filepath.Join(dir, "state", "black.txt"))
		return string(data)
	}
	waitFor(t, "the route in the table", 30*time.Second, func() bool { return strings.Contains(black(), "192.0.2.44/32") })
	if v := ctl("show", "blacklist", "-v"); !strings.Contains(v, "bgp:127.0.0.4") || strings.Contains(v, "expires") {
		t.Fatalf("show blacklist -v:\n%s", v)
	}
	stopBGPD()
	waitFor(t, "the held route's expiry in show blacklist -v", 10*time.Second, func() bool {
		return strings.Contains(ctl("show", "blacklist", "-v"), "bgp:127.0.0.4(expires ")
	})
	// spfd restarts while the neighbor is still down: the saved route is
	// held again, not dropped at start.
	stopSpfd()
	ctl, _ = startSpfd(t, spfd, spfctl, dir, conf)
	waitFor(t, "spfd back", 10*time.Second, func() bool { return strings.Contains(ctl("show", "status"), "uptime") })
	if v := ctl("show", "blacklist", "-v"); !strings.Contains(v, "192.0.2.44/32") || !strings.Contains(v, "bgp:127.0.0.4(expires ") {
		t.Errorf("after a restart with the neighbor down:\n%s", v)
	}
	if !strings.Contains(black(), "192.0.2.44/32") {
		t.Errorf("the held route left the table at the restart:\n%s", black())
	}
	waitFor(t, "the route gone after the hold", 20*time.Second, func() bool { return !strings.Contains(black(), "192.0.2.44/32") })
}

package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/runtest"
)

// The addresses of the real-sshd test: the server, two attackers, and the
// victim whose address the attackers put in their user names.
const (
	sshdServer = "198.51.100.1"
	attacker   = "198.51.100.7"
	attacker2  = "198.51.100.20" // not next to attacker: one nftables element each
	victim     = "203.0.113.50"
)

// syslogToFile is the part of a syslog daemon the test needs: it takes
// the datagrams syslog(3) sends to /dev/log ("<38>Nov 30 01:50:00
// sshd[42]: msg") and writes them the way rsyslog's traditional file
// format does, with the host name after the time stamp.
func syslogToFile(t *testing.T, sock, path string) {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msg := bytes.TrimRight(buf[:n], "\n\x00")
			if i := bytes.IndexByte(msg, '>'); msg[0] == '<' && i > 0 {
				msg = msg[i+1:]
			}
			if len(msg) < 16 {
				continue
			}
			line := string(msg[:15]) + " mx " + string(msg[16:]) + "\n"
			out.WriteString(line)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
		out.Close()
	})
}

// sshdScript runs Debian's sshd in a private mount namespace whose /dev/log
// is the test's socket, and makes failed logins against it with ssh from
// the attackers' network namespace. The user names are the attack: they
// hold the victim's address where a parser reading the wrong field would
// find it, and the long ones try to push the real client past where a
// logger cuts the message.
const sshdScript = `set -e
D=$1 NS=$2
mkdir -p $D/dev /run/sshd
for n in null zero random urandom tty; do
	[ -e /dev/$n ] || continue
	touch $D/dev/$n
	mount --bind /dev/$n $D/dev/$n
done
ln -s $D/log.sock $D/dev/log
mount --rbind $D/dev /dev
/usr/sbin/sshd -f $D/sshd_config
for i in $(seq 100); do
	[ -s $D/sshd.pid ] && break
	sleep 0.05
done
try() {
	SSH_ASKPASS=$D/askpass SSH_ASKPASS_REQUIRE=force DISPLAY=none \
	ip netns exec $NS ssh -F /dev/null -b "$1" -p 2222 -l "$2" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 \
		-o ConnectTimeout=5 ` + sshdServer + ` true </dev/null >/dev/null 2>&1 || true
}
try ` + attacker + ` root
try ` + attacker + ` "x from ` + victim + ` port 22 ssh2"
try ` + attacker + ` "$(printf 'a%.0s' $(seq 450)) from ` + victim + ` port 22"
try ` + attacker + ` "$(printf 'b%.0s' $(seq 200)) from ` + victim + ` port 22 ssh2"
try ` + attacker2 + ` root
sleep 0.5
kill $(cat $D/sshd.pid)
`

// sshdLab is the real-sshd setup: the attackers' network namespace at
// the end of a veth pair, sshd's configuration, and a syslog socket that
// writes the auth log spfd follows.
type sshdLab struct {
	dir, ns, authlog string
	spfd, spfctl     string
}

func newSSHDLab(t *testing.T) *sshdLab {
	t.Helper()
	if os.Getenv("SPFD_E2E_NS") != "1" {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root and unshare; CI must run this test")
		}
		t.Skip("needs root for network and mount namespaces")
	}
	for _, tool := range []string{"/usr/sbin/sshd", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed (apt-get install openssh-server)", tool)
		}
	}
	l := &sshdLab{dir: t.TempDir()}
	l.spfd, l.spfctl = buildBinaries(t)
	os.Chmod(l.dir, 0o755)
	// The attackers are another host: their own network namespace at the
	// end of a veth pair. spfd never bans this host's own addresses.
	l.ns = fmt.Sprintf("spfd-attacker-%d", os.Getpid())
	run(t, "ip", "netns", "add", l.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.ns).Run() })
	run(t, "ip", "link", "add", "spfd-srv", "type", "veth", "peer", "name", "spfd-att", "netns", l.ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", "spfd-srv").Run() })
	run(t, "ip", "addr", "add", sshdServer+"/24", "dev", "spfd-srv")
	run(t, "ip", "link", "set", "spfd-srv", "up")
	for _, a := range []string{attacker, attacker2} {
		run(t, "ip", "-n", l.ns, "addr", "add", a+"/24", "dev", "spfd-att")
	}
	run(t, "ip", "-n", l.ns, "link", "set", "spfd-att", "up")
	run(t, "ip", "-n", l.ns, "link", "set", "lo", "up")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(l.dir, "hostkey"))
	os.WriteFile(filepath.Join(l.dir, "sshd_config"), []byte(`Port 2222
ListenAddress `+sshdServer+`
HostKey `+filepath.Join(l.dir, "hostkey")+`
PidFile `+filepath.Join(l.dir, "sshd.pid")+`
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin yes
UsePAM no
SyslogFacility AUTH
LogLevel INFO
`), 0o644)
	os.WriteFile(filepath.Join(l.dir, "askpass"), []byte("#!/bin/sh\necho wrong-password\n"), 0o755)
	l.authlog = filepath.Join(l.dir, "auth.log")
	syslogToFile(t, filepath.Join(l.dir, "log.sock"), l.authlog)
	t.Cleanup(func() {
		if data, _ := os.ReadFile(l.authlog); t.Failed() {
			t.Logf("auth.log:\n%s", data)
		}
	})
	return l
}

// attack runs sshd and the attackers' failed logins.
func (l *sshdLab) attack(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", sshdScript, "sh", l.dir, l.ns).CombinedOutput(); err != nil {
		t.Fatalf("sshd script: %v\n%s", err, out)
	}
}

// TestRealSSHD has Debian's sshd write the log lines spfd follows: real
// messages, with sshd's own escaping and its cut at 500 bytes, through
// syslog(3). An attacker who puts the victim's address in the user name
// is banned; the victim never is.
func TestRealSSHD(t *testing.T) {
	l := newSSHDLab(t)
	ctl, _ := startSpfd(t, l.spfd, l.spfctl, l.dir, `log sshd file "`+l.authlog+`" threshold 1 within 1h
`)
	waitFor(t, "spfd", 10*time.Second, func() bool { return strings.Contains(ctl("show", "status"), "uptime") })
	l.attack(t)
	black := func() string {
		data, _ := os.ReadFile(filepath.Join(l.dir, "state", "black.txt"))
		return string(data)
	}
	// The second attacker's try is the last line; once it is banned, spfd
	// has read every line before it.
	waitFor(t, "the attackers' bans", 10*time.Second, func() bool {
		b := black()
		return strings.Contains(b, attacker+"/32") && strings.Contains(b, attacker2+"/32")
	})
	data, _ := os.ReadFile(l.authlog)
	log := string(data)
	// The attack must have reached the log as intended, or the test
	// proves nothing.
	if !strings.Contains(log, "Invalid user x from "+victim+" port 22 ssh2 from "+attacker) {
		t.Errorf("sshd did not log the forged user name:\n%s", log)
	}
	if b := black(); strings.Contains(b, victim) {
		t.Errorf("the victim was banned:\n%s\nfrom the log:\n%s", b, log)
	}
}

// TestAttackersKnockOnMailPorts is the talk's theory on a real host: the
// attackers that real sshd logged are banned in nftables, one of them
// then tries the mail port from its own namespace across the veth, and
// spfd counts it: the blacklist's rules count the connection, and
// show stats -v and spfctl report give log:sshd's hit rate (one of its
// two entries came knocking) and the manual entry's (none).
func TestAttackersKnockOnMailPorts(t *testing.T) {
	l := newSSHDLab(t)
	ctl, _ := startSpfd(t, l.spfd, l.spfctl, l.dir, `log sshd file "`+l.authlog+`" threshold 1 within 1h
table white nftables "white"
table black nftables "black"
nftables-rules ports { 25 }
`)
	waitFor(t, "spfd", 10*time.Second, func() bool { return strings.Contains(ctl("show", "status"), "uptime") })
	ctl("add", "black", "198.51.100.200") // listed by hand, never comes
	l.attack(t)
	waitFor(t, "the attackers in the kernel's blacklist", 10*time.Second, func() bool {
		out, _ := exec.Command("nft", "list", "table", "inet", "spfd").CombinedOutput()
		return strings.Contains(string(out), attacker) && strings.Contains(string(out), attacker2)
	})
	// The first attacker tries to send mail.
	if err := runtest.DialFromNetns("/run/netns/"+l.ns, attacker, sshdServer+":25"); err != nil {
		t.Fatal(err)
	}
	stats := ctl("show", "stats", "-v")
	for _, want := range []string{
		`(?m)^black black: held 3, .* packets [1-9][0-9]* bytes `,
		`(?m)^black +log:sshd +2 +1 \(50\.0%\)$`,
		`(?m)^black +manual +1 +0 \(0\.0%\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(stats) {
			t.Errorf("show stats -v lacks %s:\n%s", want, stats)
		}
	}
	report := ctl("report")
	for _, want := range []string{`(?m)^black +log:sshd +2 +1 +50\.0%$`, `(?m)^` + regexp.QuoteMeta(attacker) + `/32 +[1-9][0-9]* +log:sshd$`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("spfctl report lacks %s:\n%s", want, report)
		}
	}
	// The connection, told from the packets by the SYN rules.
	if !strings.Contains(ctl("show", "stats", "-j"), `"list":"black"`) {
		t.Errorf("show stats -j:\n%s", ctl("show", "stats", "-j"))
	}
}

// Command sshclasses writes a mixed sshd log in classic syslog form, every
// kind of line sshd writes about an attack and the benign ones around it,
// shuffled as a busy host interleaves them, and a label file that names
// each line's class. Every connection has its own client address, so a
// tool's answer (an address) tells which line it flagged:
// bench/classes.sh counts, per class, the lines spfd, fail2ban-regex and
// sshguard's parser flag.
//
//	go run ./bench/sshclasses -n 200 -labels classes.tsv > auth.log
//
// The messages follow OpenSSH's own formats (auth.c, auth2.c,
// auth-pam.c, sshd.c, packet.c), not one distribution's logs.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"
)

// class is one kind of connection: the lines sshd writes about it, which
// take the client address A, port P, user U and a key fingerprint K.
type class struct {
	name   string
	attack bool
	lines  []string
}

const fp = "SHA256:Xq3mKy5rS0t2u1v0w9xYzAbCdEfGhIjKlMnOpQrStUv"

var classes = []class{
	{"invalid-user", true, []string{"Invalid user %[3]s from %[1]s port %[2]d"}},
	{"failed-password", true, []string{"Failed password for root from %[1]s port %[2]d ssh2"}},
	{"failed-password-invalid", true, []string{"Failed password for invalid user %[3]s from %[1]s port %[2]d ssh2"}},
	{"failed-kbd-interactive", true, []string{"Failed keyboard-interactive/pam for invalid user %[3]s from %[1]s port %[2]d ssh2"}},
	{"failed-none-invalid", true, []string{"Failed none for invalid user %[3]s from %[1]s port %[2]d ssh2"}},
	{"failed-publickey-invalid", true, []string{"Failed publickey for invalid user %[3]s from %[1]s port %[2]d ssh2: ED25519 " + fp}},
	{"pam-auth-failure", true, []string{"error: PAM: Authentication failure for illegal user %[3]s from %[1]s"}},
	{"pam-user-unknown", true, []string{"error: PAM: User not known to the underlying authentication module for illegal user %[3]s from %[1]s"}},
	{"not-in-allowusers", true, []string{"User %[3]s from %[1]s not allowed because not listed in AllowUsers"}},
	{"in-denyusers", true, []string{"User %[3]s from %[1]s not allowed because listed in DenyUsers"}},
	{"in-denygroups", true, []string{"User %[3]s from %[1]s not allowed because a group is listed in DenyGroups"}},
	{"not-in-allowgroups", true, []string{"User %[3]s from %[1]s not allowed because none of user's groups are listed in AllowGroups"}},
	{"root-login-refused", true, []string{"ROOT LOGIN REFUSED FROM %[1]s port %[2]d"}},
	{"max-auth-exceeded", true, []string{"error: maximum authentication attempts exceeded for root from %[1]s port %[2]d ssh2 [preauth]"}},
	{"closed-invalid-preauth", true, []string{"Connection closed by invalid user %[3]s %[1]s port %[2]d [preauth]"}},
	{"failed-then-disconnected", true, []string{"Failed password for root from %[1]s port %[2]d ssh2", "Disconnected from authenticating user root %[1]s port %[2]d [preauth]"}},
	{"client-auth-fail", true, []string{"Received disconnect from %[1]s port %[2]d:3: com.jcraft.jsch.JSchException: Auth fail [preauth]"}},
	{"change-of-username", true, []string{"Disconnecting invalid user %[3]s %[1]s port %[2]d: Change of username or service not allowed: (%[3]s,ssh-connection) -> (root,ssh-connection) [preauth]"}},
	{"tcp-wrappers-refused", true, []string{"refused connect from %[1]s (%[1]s)"}},
	// Benign: logins, a user whose keys did not match, scanners that
	// never tried a password, clients that logged out.
	{"accepted-publickey", false, []string{"Accepted publickey for alice from %[1]s port %[2]d ssh2: ED25519 " + fp}},
	{"publickey-only-session", false, []string{"Failed publickey for alice from %[1]s port %[2]d ssh2: RSA " + fp, "Connection closed by authenticating user alice %[1]s port %[2]d [preauth]"}},
	// Alone, this is also what a user whose keys did not match leaves;
	// its connection's failures, if any, count on their own lines.
	{"disconnected-authenticating-alone", false, []string{"Disconnected from authenticating user root %[1]s port %[2]d [preauth]"}},
	{"bare-connection-closed", false, []string{"Connection closed by %[1]s port %[2]d [preauth]"}},
	{"no-identification", false, []string{"Did not receive identification string from %[1]s port %[2]d"}},
	{"normal-logout", false, []string{"Received disconnect from %[1]s port %[2]d:11: disconnected by user", "Disconnected from user alice %[1]s port %[2]d"}},
}

func main() {
	n := flag.Int("n", 200, "connections per class")
	labels := flag.String("labels", "classes.tsv", "write ADDRESS TAB CLASS TAB ATTACK here")
	flag.Parse()
	lf, err := os.Create(*labels)
	if err != nil {
		log.Fatal(err)
	}
	if err := write(os.Stdout, lf, *n); err != nil {
		log.Fatal(err)
	}
	if err := lf.Close(); err != nil {
		log.Fatal(err)
	}
}

// write writes the log of n connections per class to logw, and a label
// per connection (ADDRESS TAB CLASS TAB ATTACK) to labels.
func write(logw, labels io.Writer, n int) error {
	r := rand.New(rand.NewPCG(5, 6))
	type conn struct {
		class int
		addr  string
	}
	var conns []conn
	for c := range classes {
		for i := range n {
			k := c*n + i
			a := fmt.Sprintf("45.%d.%d.%d", 10+k/62500, k/250%250, 1+k%250)
			if i%7 == 0 { // some IPv6 in every class
				// As sshd prints it: canonical, as every tool answers.
				a = netip.MustParseAddr(fmt.Sprintf("2a01:4f8:%x:%x::%x", 16+c, i, 1+r.IntN(65535))).String()
			}
			conns = append(conns, conn{c, a})
		}
	}
	r.Shuffle(len(conns), func(i, j int) { conns[i], conns[j] = conns[j], conns[i] })
	lw := bufio.NewWriter(labels)
	w := bufio.NewWriter(logw)
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	users := []string{"admin", "oracle", "test", "ubuntu", "pi", "git", "postgres", "user", "ftp", "support"}
	for i, c := range conns {
		cl := classes[c.class]
		fmt.Fprintf(lw, "%s\t%s\t%v\n", c.addr, cl.name, cl.attack)
		// One process per connection, as sshd forks: a pid shared by two
		// connections would let a tool that joins lines by pid mix them.
		pid, port, user := 10000+i, 1024+r.IntN(60000), users[r.IntN(len(users))]
		for _, l := range cl.lines {
			t = t.Add(time.Duration(r.IntN(500)) * time.Millisecond)
			fmt.Fprintf(w, "%s mx1 sshd[%d]: %s\n", t.Format("Jan _2 15:04:05"), pid, fmt.Sprintf(l, c.addr, port, user))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return lw.Flush()
}

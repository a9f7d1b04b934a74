// Package sshlog writes a synthetic sshd log in OpenBSD authlog /
// classic syslog form, the same on every run: attacks (invalid users,
// failed passwords, preauth disconnects, max-auth) from a few thousand
// addresses, benign logins and noise, 15% over IPv6. bench/sshgen and
// the scan benchmarks share it, so both measure the same log.
package sshlog

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// Write writes n lines to w.
func Write(out io.Writer, n int) error {
	w := bufio.NewWriterSize(out, 1<<20)
	r := rand.New(rand.NewPCG(3, 4))
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	users := []string{"root", "admin", "oracle", "test", "ubuntu", "pi", "git", "postgres", "user", "ftp"}
	// A few thousand attackers, each seen many times.
	var pool4, pool6 []string
	for range 3000 {
		pool4 = append(pool4, fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254)))
	}
	for range 500 {
		pool6 = append(pool6, fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(4096), r.IntN(65536), 1+r.IntN(65535)))
	}
	addr := func() string {
		if r.IntN(100) < 15 {
			return pool6[r.IntN(len(pool6))]
		}
		return pool4[r.IntN(len(pool4))]
	}
	for i := 0; i < n; {
		t = t.Add(time.Duration(r.IntN(200)) * time.Millisecond)
		ts := t.Format("Jan _2 15:04:05")
		pid := 10000 + r.IntN(50000)
		a, port, u := addr(), 1024+r.IntN(60000), users[r.IntN(len(users))]
		var lines []string
		switch k := r.IntN(100); {
		case k < 40:
			lines = []string{
				fmt.Sprintf("%s mx1 sshd[%d]: Invalid user %s from %s port %d", ts, pid, u, a, port),
				fmt.Sprintf("%s mx1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2", ts, pid, u, a, port),
				fmt.Sprintf("%s mx1 sshd[%d]: Connection closed by invalid user %s %s port %d [preauth]", ts, pid, u, a, port),
			}
		case k < 60:
			lines = []string{fmt.Sprintf("%s mx1 sshd[%d]: Failed password for root from %s port %d ssh2", ts, pid, a, port)}
		case k < 65:
			lines = []string{fmt.Sprintf("%s mx1 sshd[%d]: error: maximum authentication attempts exceeded for root from %s port %d ssh2 [preauth]", ts, pid, a, port)}
		case k < 75:
			lines = []string{fmt.Sprintf("%s mx1 sshd[%d]: Disconnected from authenticating user root %s port %d [preauth]", ts, pid, a, port)}
		case k < 85:
			lines = []string{
				fmt.Sprintf("%s mx1 sshd[%d]: Accepted publickey for alice from 192.0.2.%d port %d ssh2: ED25519 SHA256:Xq3mKy5rS0t2u1v0w9xYzAbCdEfGhIjKlMnOpQrStUv", ts, pid, 1+r.IntN(20), port),
				fmt.Sprintf("%s mx1 sshd[%d]: pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)", ts, pid),
			}
		case k < 95:
			lines = []string{fmt.Sprintf("%s mx1 sshd[%d]: Connection closed by %s port %d [preauth]", ts, pid, a, port)}
		default:
			lines = []string{fmt.Sprintf("%s mx1 sshd[%d]: Received disconnect from %s port %d:11: Bye Bye [preauth]", ts, pid, a, port)}
		}
		for _, l := range lines {
			if i == n {
				break
			}
			fmt.Fprintln(w, l)
			i++
		}
	}
	return w.Flush()
}

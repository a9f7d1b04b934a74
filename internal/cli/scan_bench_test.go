package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

// sshdLog writes n lines of a mixed sshd log as bench/sshgen does: a few
// thousand attackers seen many times, benign logins and noise, some IPv6.
func sshdLog(n int) string {
	r := rand.New(rand.NewPCG(3, 4))
	var pool []string
	for i := range 3500 {
		if i%7 == 0 {
			pool = append(pool, fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(4096), r.IntN(65536), 1+r.IntN(65535)))
		} else {
			pool = append(pool, fmt.Sprintf("%d.%d.%d.%d", 1+r.IntN(200), r.IntN(256), r.IntN(256), 1+r.IntN(254)))
		}
	}
	var b strings.Builder
	t := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		t = t.Add(time.Duration(r.IntN(200)) * time.Millisecond)
		ts, pid, a, port := t.Format("Jan _2 15:04:05"), 10000+r.IntN(50000), pool[r.IntN(len(pool))], 1024+r.IntN(60000)
		switch k := r.IntN(100); {
		case k < 40:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Failed password for invalid user pi from %s port %d ssh2\n", ts, pid, a, port)
		case k < 60:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Invalid user oracle from %s port %d\n", ts, pid, a, port)
		case k < 75:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Disconnected from authenticating user root %s port %d [preauth]\n", ts, pid, a, port)
		case k < 85:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Accepted publickey for alice from 192.0.2.%d port %d ssh2: ED25519 SHA256:Xq3mKy5rS0t2u1v0w9xYzAbCdEfGhIjKlMnOpQrStUv\n", ts, pid, 1+r.IntN(20), port)
		default:
			fmt.Fprintf(&b, "%s mx1 sshd[%d]: Connection closed by %s port %d [preauth]\n", ts, pid, a, port)
		}
	}
	return b.String()
}

// BenchmarkScanSSHD is the pipeline of spfctl scan -t sshd on a mixed log,
// reports discarded: bench/scan.sh compares it with sshguard's parser and
// fail2ban-regex.
func BenchmarkScanSSHD(b *testing.B) {
	text := sshdLog(200_000)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		s := newScanner(config.Default(), "sshd", io.Discard, runtime.GOMAXPROCS(0))
		if err := s.scan(context.Background(), strings.NewReader(text), ""); err != nil {
			b.Fatal(err)
		}
		s.out.Flush()
	}
}

package cli

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/internal/sshlog"
)

// BenchmarkScanSSHD is the pipeline of spfctl scan -t sshd on the log
// bench/sshgen writes, reports discarded: bench/scan.sh compares it with
// sshguard's parser and fail2ban-regex.
func BenchmarkScanSSHD(b *testing.B) {
	var log strings.Builder
	if err := sshlog.Write(&log, 200_000); err != nil {
		b.Fatal(err)
	}
	text := log.String()
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

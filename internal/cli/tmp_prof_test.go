package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"testing"

	"github.com/spfd/spfd/config"
)

func BenchmarkTmpScanFile(b *testing.B) {
	text, err := os.ReadFile("/tmp/sb/auth.log")
	if err != nil {
		b.Skip()
	}
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		s := newScanner(config.Default(), "sshd", io.Discard, runtime.GOMAXPROCS(0))
		if err := s.scan(context.Background(), bytes.NewReader(text), ""); err != nil {
			b.Fatal(err)
		}
		s.out.Flush()
	}
}

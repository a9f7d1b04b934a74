// Command stategen writes an spfd state directory holding N random
// blacklist entries (85% IPv4 hosts, 15% IPv6 /64s and hosts), as log
// mining would leave them, for the restart and memory benchmark.
package main

import (
	"bytes"
	"flag"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spfd/spfd/internal/state"
)

func main() {
	n := flag.Int("n", 1_000_000, "blacklist entries")
	dir := flag.String("dir", "", "state directory to create")
	flag.Parse()
	if *dir == "" {
		log.Fatal("usage: stategen -dir DIR [-n N]")
	}
	now := time.Now()
	l := state.NewLists(func() time.Time { return now })
	r := rand.New(rand.NewPCG(1, 2))
	for l.Len(state.Black) < *n {
		var p netip.Prefix
		if r.IntN(100) < 85 {
			var b [4]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[0] = 1 + b[0]%223 // unicast, not 0/8 or 224/4
			p = netip.PrefixFrom(netip.AddrFrom4(b), 32)
		} else {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for i := 2; i < 16; i++ {
				b[i] = byte(r.Uint32())
			}
			bits := 128
			if r.IntN(2) == 0 {
				bits = 64
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		}
		src := []string{"log:sshd", "log:httpd", "log:spamtrap"}[r.IntN(3)]
		l.Add(state.Black, p, src, now.Add(time.Duration(1+r.IntN(24))*time.Hour))
	}
	var buf bytes.Buffer
	if err := state.WriteSnapshot(&buf, &state.Snapshot{Generation: 1, Lists: l}); err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*dir, "state"), buf.Bytes(), 0o600); err != nil {
		log.Fatal(err)
	}
}

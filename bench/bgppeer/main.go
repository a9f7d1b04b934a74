// Command bgppeer announces N blacklist routes (65066:666) to spfd from a
// BGP speaker on -addr, then waits until interrupted: the sending side of
// the receive benchmark. With -flap D it announces and withdraws them in
// a loop for D instead, as a flooding peer would.
package main

import (
	"context"
	"flag"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"time"

	"github.com/spfd/spfd/bgp"
)

func main() {
	n := flag.Int("n", 100_000, "routes")
	addr := flag.String("addr", "127.0.0.3", "our address")
	peer := flag.String("peer", "127.0.0.2", "spfd's address")
	peerAS := flag.Uint("peer-as", 65001, "the peer's AS")
	flap := flag.Duration("flap", 0, "announce and withdraw in a loop for this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sp, err := bgp.Start(ctx, bgp.Config{ASN: 65066, RouterID: *addr, Listen: []string{*addr},
		Neighbors: []bgp.Neighbor{{Address: *peer, ASN: uint32(*peerAS), LocalAddress: *addr}}})
	if err != nil {
		log.Fatal(err)
	}
	ps := make([]netip.Prefix, 0, *n)
	for i := range *n {
		// Odd last octets: no two routes merge into a shorter prefix.
		a := netip.AddrFrom4([4]byte{10, byte(i >> 15), byte(i >> 7), byte(2*(i&127) + 1)})
		ps = append(ps, netip.PrefixFrom(a, 32))
	}
	start := time.Now()
	if *flap > 0 {
		rounds := 0
		for time.Since(start) < *flap && ctx.Err() == nil {
			// Each half round goes out on the wire before the next:
			// Flush waits until the socket took it, so spfd's pace sets
			// the flood's.
			for _, set := range [][]netip.Prefix{ps, nil} {
				if err := sp.Announce(ctx, "black", set); err != nil {
					log.Fatal(err)
				}
				if err := sp.Flush(ctx); err != nil && ctx.Err() == nil {
					log.Fatal(err)
				}
			}
			rounds++
		}
		log.Printf("%d rounds of %d announcements and withdrawals in %v", rounds, len(ps), time.Since(start))
		<-ctx.Done()
		return
	}
	if err := sp.Announce(ctx, "black", ps); err != nil {
		log.Fatal(err)
	}
	log.Printf("%d routes queued in %v", len(ps), time.Since(start))
	<-ctx.Done()
}

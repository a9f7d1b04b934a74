package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/pftable"
)

// traffic is what the sampler adds up between samples: the mail logs'
// counts, and the kernel counters as last read.
type traffic struct {
	mailConnections, mailDeliveries atomic.Int64
	mu                              sync.Mutex // guards the counters as last read
	lastHits                        [2]pftable.Stats
	haveHits                        [2]bool
}

func (d *Daemon) noteMailTraffic(t logwatch.MailTraffic) {
	d.traffic.mailConnections.Add(int64(t.Connections))
	d.traffic.mailDeliveries.Add(int64(t.Deliveries))
}

// counterDelta is how far a kernel counter moved: a counter that went
// back (the rule or table was made anew) counts from zero.
func counterDelta(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// sample records what the last interval saw: the packets (and, where the
// kernel tells, the new connections) each list matched, read from the
// counters the kernel sums, and what the mail logs said.
func (d *Daemon) sample(ctx context.Context) state.Sample {
	var s state.Sample
	d.mu.Lock()
	backend, cfg := d.backend, d.cfg
	d.mu.Unlock()
	if hc, ok := backend.(pftable.HitCounter); ok {
		d.traffic.mu.Lock()
		defer d.traffic.mu.Unlock()
		for _, l := range []state.List{state.White, state.Black} {
			table := tableName(cfg.White)
			if l == state.Black {
				table = tableName(cfg.Black)
			}
			st, err := hc.Hits(ctx, table)
			if err != nil || !st.Counters {
				continue
			}
			var p, c uint64
			if d.traffic.haveHits[l] {
				p = counterDelta(d.traffic.lastHits[l].Packets, st.Packets)
				c = counterDelta(d.traffic.lastHits[l].Connections, st.Connections)
			}
			d.traffic.lastHits[l], d.traffic.haveHits[l] = st, true
			if l == state.White {
				s.WhitePackets, s.WhiteConnections = p, c
			} else {
				s.BlackPackets, s.BlackConnections = p, c
			}
		}
	}
	s.MailConnections = uint64(d.traffic.mailConnections.Swap(0))
	s.MailDeliveries = uint64(d.traffic.mailDeliveries.Swap(0))
	return s
}

// sampleLoop adds a sample to the state's series every minute, and
// writes the series down every ten.
func (d *Daemon) sampleLoop(ctx context.Context) error {
	tick := d.clock.NewTicker(time.Minute)
	defer tick.Stop()
	d.sample(ctx) // the counters' starting point
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C():
		}
		// The interval that just ended.
		d.state.AddSample(d.now().Add(-time.Second), d.sample(ctx))
		if n%10 == 0 {
			if err := d.state.SaveSeries(); err != nil {
				d.recordError("series", err)
			}
		}
	}
}

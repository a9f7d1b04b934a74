package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spfd/spfd/internal/state"
)

// Every minute the series gains what the kernel counters moved and what
// the mail log said: a counter that went back (rules made anew) counts
// from zero, and the mail lines come from a real followed log.
func TestSamplesOfKernelAndMailLog(t *testing.T) {
	dir := t.TempDir()
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, exampleZone, fmt.Sprintf("log maillog file %q\n", maillog))
	ctx := context.Background()
	white, black := tableName(h.d.cfg.White), tableName(h.d.cfg.Black)
	h.run(t)
	// The follower is running once it has read a line.
	waitUntil(t, func() bool {
		appendFile(t, maillog, "Nov 27 19:00:00 mx postfix/smtpd[300]: disconnect from x[198.51.100.1]\n")
		return h.d.position(maillog) != nil
	})
	h.fake.SetHits(black, 1000, 100)
	h.fake.SetHits(white, 50, 5)
	h.d.sample(ctx) // the starting point: nothing counted yet
	lines := 2
	appendFile(t, maillog, `Nov 27 20:00:00 mx postfix/smtpd[300]: connect from mail.example.net[198.51.100.7]
Nov 27 20:00:01 mx postfix/smtpd[300]: connect from unknown[2001:db8::7]
Nov 27 20:00:03 mx postfix/local[202]: 5BCDEF1234: to=<alice@example.org>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)
`)
	waitUntil(t, func() bool {
		p := h.d.position(maillog)
		st, _ := os.Stat(maillog)
		return p != nil && p.Offset == st.Size()
	})
	h.fake.SetHits(black, 1300, 130)
	h.fake.SetHits(white, 20, 2) // the rules were made anew
	s := h.d.sample(ctx)
	want := state.Sample{BlackPackets: 300, BlackConnections: 30, WhitePackets: 20, WhiteConnections: 2, MailConnections: uint64(lines), MailDeliveries: 1}
	if s != want {
		t.Fatalf("sample %+v, want %+v", s, want)
	}
	h.d.state.AddSample(h.clock.Now(), s)
	if got := h.d.state.SeriesSum(state.Window(h.clock.Now(), time.Hour, time.Minute)); got != want {
		t.Fatalf("series %+v", got)
	}
	if s := h.d.sample(ctx); s != (state.Sample{}) {
		t.Fatalf("nothing moved, yet %+v", s)
	}
}

package daemon

import (
	"context"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/pftable"
)

// show stats adds the traffic of the last hour, day and week from the
// series, and each source's entries; with -v, how many of them a packet
// met since, from the element counters.
func TestShowStatsTrafficAndSources(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.walk(t, "example.com")
	ctx := h.run(t)
	waitUntil(t, func() bool {
		_, err := os.Stat(h.d.opts.SocketPath)
		return err == nil
	})
	h.d.applyOutcomes(config.LogSource{}, []logwatch.Outcome{
		{Action: logwatch.Ban, Addr: netip.MustParseAddr("203.0.113.9"), Rule: "sshd", TTL: time.Hour},
		{Action: logwatch.Ban, Addr: netip.MustParseAddr("203.0.113.10"), Rule: "sshd", TTL: time.Hour},
	}, logwatch.Position{Path: "/var/log/authlog"})
	var out strings.Builder
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", "198.51.100.7"}}, &out); err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now()
	h.d.state.AddSample(now.Add(-30*time.Minute), state.Sample{BlackPackets: 40, BlackConnections: 8, MailConnections: 100, MailDeliveries: 90})
	h.d.state.AddSample(now.Add(-5*time.Hour), state.Sample{BlackPackets: 60, BlackConnections: 12, MailConnections: 10, MailDeliveries: 9})
	h.d.state.AddSample(now.Add(-3*24*time.Hour), state.Sample{WhitePackets: 500, WhiteConnections: 50})
	// 203.0.113.9 met, .10 not
	met := []pftable.ElementCount{{First: netip.MustParseAddr("203.0.113.9"), Last: netip.MustParseAddr("203.0.113.9"), Packets: 3}}
	h.fake.ElementHits = map[string][]pftable.ElementCount{tableName(h.d.cfg.Black): met}

	show := func(verbose bool) string {
		t.Helper()
		var out strings.Builder
		if err := control.Do(context.Background(), h.d.opts.SocketPath, control.Request{Args: []string{"show", "stats"}, Verbose: verbose}, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	text := show(false)
	for _, want := range []string{
		`(?m)^hour +0 +0 +40 +8 +100 +90$`,
		`(?m)^day +0 +0 +100 +20 +110 +99$`,
		`(?m)^week +500 +50 +100 +20 +110 +99$`,
		`(?m)^black +log:sshd +2 +-$`,
		`(?m)^black +manual +1 +-$`,
		`(?m)^white +spf +2 +-$`,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("show stats lacks %s:\n%s", want, text)
		}
	}
	h.fake.ElementHits = nil // as the pf and file backends: no per-element counts
	if text := show(true); !strings.Contains(text, "(seen since listed: not counted: ") || !regexp.MustCompile(`(?m)^black +manual +1 +-$`).MatchString(text) {
		t.Errorf("show stats -v without element counters:\n%s", text)
	}
	h.fake.ElementHits = map[string][]pftable.ElementCount{tableName(h.d.cfg.Black): met}
	text = show(true)
	for _, want := range []string{`(?m)^black +log:sshd +2 +1 \(50\.0%\)$`, `(?m)^black +manual +1 +0 \(0\.0%\)$`} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("show stats -v lacks %s:\n%s", want, text)
		}
	}
}

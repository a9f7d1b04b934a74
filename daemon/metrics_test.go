package daemon

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/logwatch"
)

// With metrics listen, /metrics serves the lists by source, what the logs
// and walks did, and the syncs, under names Prometheus' linter accepts.
func TestMetricsServed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newHarness(t, exampleZone, fmt.Sprintf("domain example.com\nmetrics listen %s\n", addr))
	h.walk(t, "example.com")
	ctx := h.run(t)
	h.d.applyOutcomes(config.LogSource{}, []logwatch.Outcome{{Action: logwatch.Ban, Addr: netip.MustParseAddr("203.0.113.9"), Rule: "sshd", TTL: time.Hour}},
		logwatch.Position{Path: "/var/log/authlog"})
	if err := h.d.syncTables(ctx); err != nil {
		t.Fatal(err)
	}
	var body string
	waitUntil(t, func() bool {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	})
	for _, want := range []string{
		`spfd_list_entries{list="black",source="log:sshd"} 1`,
		`spfd_list_entries{list="white",source="spf"} 2`,
		`spfd_log_events_total{action="blacklist",rule="sshd"} 1`,
		`spfd_walks_total{result="complete"} 1`,
		`spfd_table_syncs_total{backend="fake",result="ok"}`,
		`spfd_list_pushed_prefixes{list="black"} 1`,
		`spfd_repeat_offenders 1`,
		`spfd_domains{status="complete"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %s in\n%s", want, grepSpfd(body))
		}
	}
	problems, err := testutil.GatherAndLint(h.d.metrics.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "spfd_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func grepSpfd(body string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "spfd_") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

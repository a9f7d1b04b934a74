package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/pftable"
)

// metrics are what spfd exports to Prometheus (metrics listen in
// spfd.conf): counters of what happened, kept as it happens, and gauges
// read from the daemon when scraped. Names follow Prometheus' rules: the
// spfd_ prefix, _total counters, seconds.
type metrics struct {
	reg         *prometheus.Registry
	walks       *prometheus.CounterVec
	logEvents   *prometheus.CounterVec
	syncs       *prometheus.CounterVec
	feedFetches *prometheus.CounterVec
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		walks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spfd_walks_total", Help: "SPF walks of domains, by result.",
		}, []string{"result"}),
		logEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spfd_log_events_total", Help: "What log lines led to, by rule and action (blacklist, capture).",
		}, []string{"rule", "action"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spfd_table_syncs_total", Help: "Pushes of both lists to the tables, by backend and result.",
		}, []string{"backend", "result"}),
		feedFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "spfd_feed_fetches_total", Help: "Feed fetches, by feed and result (loaded, not-modified, error).",
		}, []string{"feed", "result"}),
	}
	m.reg.MustRegister(m.walks, m.logEvents, m.syncs, m.feedFetches,
		collectors.NewGoCollector(), &daemonCollector{d: d})
	return m
}

// The gauges read at scrape time.
var (
	descEntries = prometheus.NewDesc("spfd_list_entries", "Entries held in a list, by source (spf, capture-walked domains included, counts as spf).",
		[]string{"list", "source"}, nil)
	descPushed = prometheus.NewDesc("spfd_list_pushed_prefixes", "Prefixes pushed to a list's table (the minimal cover; whitelist wins).",
		[]string{"list"}, nil)
	descRepairs = prometheus.NewDesc("spfd_table_drift_repairs_total", "Times a table was found changed behind spfd's back and put right.",
		[]string{"list"}, nil)
	descPackets = prometheus.NewDesc("spfd_table_matched_packets_total", "Packets matched by a list in the kernel (rule counters, pf table statistics).",
		[]string{"list"}, nil)
	descBytes = prometheus.NewDesc("spfd_table_matched_bytes_total", "Bytes matched by a list in the kernel.",
		[]string{"list"}, nil)
	descLastSync = prometheus.NewDesc("spfd_last_sync_timestamp_seconds", "When the tables were last pushed.", nil, nil)
	descDomains  = prometheus.NewDesc("spfd_domains", "SPF domains walked, by the status of their last walk.", []string{"status"}, nil)
	descBGPUp    = prometheus.NewDesc("spfd_bgp_neighbor_up", "Whether a BGP session is established.", []string{"neighbor"}, nil)
	descBGPRoute = prometheus.NewDesc("spfd_bgp_neighbor_received_routes", "Routes a BGP neighbor sends.", []string{"neighbor"}, nil)
	descOffender = prometheus.NewDesc("spfd_repeat_offenders", "Addresses remembered as repeat offenders.", nil, nil)
)

type daemonCollector struct{ d *Daemon }

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEntries, descPushed, descRepairs, descPackets, descBytes, descLastSync, descDomains, descBGPUp, descBGPRoute, descOffender} {
		ch <- d
	}
}

// sourceLabel bounds the label's values: one per feed, BGP neighbor and
// log rule, and one for all SPF domains (there may be thousands).
func sourceLabel(src string) string {
	if strings.HasPrefix(src, state.PrefixSPF) {
		return "spf"
	}
	return src
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pushed := d.covers()
	d.mu.Lock()
	backend, cfg, lastSync := d.backend, d.cfg, d.lastSync
	d.mu.Unlock()
	for _, l := range []state.List{state.White, state.Black} {
		name := l.String()
		bySource := make(map[string]int)
		for src, n := range d.state.SourceCounts(l) {
			bySource[sourceLabel(src)] += n
		}
		for src, n := range bySource {
			ch <- prometheus.MustNewConstMetric(descEntries, prometheus.GaugeValue, float64(n), name, src)
		}
		ch <- prometheus.MustNewConstMetric(descPushed, prometheus.GaugeValue, float64(pushed[l].Count()), name)
		table := tableName(cfg.White)
		if l == state.Black {
			table = tableName(cfg.Black)
		}
		if rc, ok := backend.(pftable.RepairCounter); ok {
			ch <- prometheus.MustNewConstMetric(descRepairs, prometheus.CounterValue, float64(rc.Repairs(table)), name)
		}
		// Only counters the kernel sums: a scrape must not read a
		// million set elements.
		if hc, ok := backend.(pftable.HitCounter); ok {
			if st, err := hc.Hits(ctx, table); err == nil && st.Counters {
				ch <- prometheus.MustNewConstMetric(descPackets, prometheus.CounterValue, float64(st.Packets), name)
				ch <- prometheus.MustNewConstMetric(descBytes, prometheus.CounterValue, float64(st.Bytes), name)
			}
		}
	}
	if !lastSync.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastSync, prometheus.GaugeValue, float64(lastSync.Unix()))
	}
	statuses := make(map[string]int)
	for _, ds := range d.state.Domains() {
		s := ds.Status
		if s == "" {
			s = "unwalked"
		}
		statuses[s]++
	}
	for s, n := range statuses {
		ch <- prometheus.MustNewConstMetric(descDomains, prometheus.GaugeValue, float64(n), s)
	}
	ch <- prometheus.MustNewConstMetric(descOffender, prometheus.GaugeValue, float64(d.state.Offenders()))
	if sp, err := d.configuredSpeaker(); err == nil {
		if ns, err := sp.Neighbors(ctx); err == nil {
			for _, n := range ns {
				up := 0.0
				if n.State == "established" {
					up = 1
				}
				ch <- prometheus.MustNewConstMetric(descBGPUp, prometheus.GaugeValue, up, n.Address)
				ch <- prometheus.MustNewConstMetric(descBGPRoute, prometheus.GaugeValue, float64(n.Received), n.Address)
			}
		}
	}
}

// serveMetrics answers /metrics on ln until ctx ends.
func (d *Daemon) serveMetrics(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	stop := context.AfterFunc(ctx, func() {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

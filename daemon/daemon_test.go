package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/dnstest"
	"github.com/spfd/spfd/internal/runtest"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/pftable"
	"github.com/spfd/spfd/prefixset"
	"github.com/spfd/spfd/spf"
)

// syncClock is a fake clock safe for the daemon's goroutines.
type syncClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *syncClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *syncClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	stop  func() // set by run
	d     *Daemon
	dns   *dnstest.Server
	fake  *pftable.Fake
	clock *syncClock
	dir   string
}

func newHarness(t *testing.T, zone, conf string) *harness {
	t.Helper()
	return newHarnessWith(t, zone, conf, nil)
}

// newHarnessWith is newHarness with the options adjusted by adjust.
func newHarnessWith(t *testing.T, zone, conf string, adjust func(*Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "spfd.conf")
	full := fmt.Sprintf("state-directory %q\nwalk grace 7d\n%s\n", filepath.Join(dir, "state"), conf)
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	h := &harness{dns: dnstest.Start(t, zone), fake: pftable.NewFake(), dir: dir,
		clock: &syncClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}}
	var err error
	opts := Options{
		ConfigPath: path,
		Logger:     log.NewNopLogger(),
		Now:        h.clock.Now,
		Exchanger:  &spf.Client{Servers: []string{h.dns.Addr}, Timeout: 300 * time.Millisecond},
		Backend:    h.fake,
	}
	if adjust != nil {
		adjust(&opts)
	}
	h.d, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.d.state.Close() })
	return h
}

func (h *harness) walk(t *testing.T, names ...string) {
	t.Helper()
	h.d.walkDomains(context.Background(), names)
	if err := h.d.syncTables(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// run starts the daemon, its socket in the test's directory; it stops
// with h.stop or when the test ends, and Run must return cleanly.
func (h *harness) run(t *testing.T) context.Context {
	t.Helper()
	h.d.opts.SocketPath = filepath.Join(h.dir, "spfd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(h.stop)
	return ctx
}

// domain returns a copy of a domain's state.
func (h *harness) domain(name string) state.DomainState { return h.d.domain(name) }

func (h *harness) white() []string { return h.table(h.d.cfg.White) }

func (h *harness) table(t config.Table) []string {
	var out []string
	for _, p := range h.fake.Table(tableName(t)) {
		out = append(out, p.String())
	}
	return out
}

const exampleZone = `example.com. 600 IN TXT "v=spf1 ip4:192.0.2.0/24 include:_spf.example.net -all"
_spf.example.net. 300 IN TXT "v=spf1 ip6:2001:db8::/32"`

func TestTemporaryFailureKeepsLastGoodSet(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.walk(t, "example.com")
	want := []string{"192.0.2.0/24", "2001:db8::/32"}
	if !slices.Equal(h.white(), want) {
		t.Fatalf("white %v, want %v", h.white(), want)
	}
	// TTL 300 is under the 1h minimum: the next walk is about an hour out.
	if next := h.domain("example.com").NextWalk.Sub(h.clock.Now()); next > time.Hour || next < 54*time.Minute {
		t.Errorf("next walk in %v, want about 1h", next)
	}

	h.dns.Set("_spf.example.net", dnstest.ServFail)
	h.clock.Advance(2 * time.Hour) // past the cached answers' TTL
	h.walk(t, "example.com")
	if !slices.Equal(h.white(), want) {
		t.Fatalf("after SERVFAIL: white %v, want the last good %v", h.white(), want)
	}
	if h.domain("example.com").Status != "temporary-failure" || h.domain("example.com").Failures != 1 {
		t.Errorf("status %q failures %d", h.domain("example.com").Status, h.domain("example.com").Failures)
	}
	if next := h.domain("example.com").NextWalk.Sub(h.clock.Now()); next > time.Minute || next < 54*time.Second {
		t.Errorf("first retry in %v, want about 1m", next)
	}
	h.walk(t, "example.com")
	if next := h.domain("example.com").NextWalk.Sub(h.clock.Now()); next > 2*time.Minute || next < 108*time.Second {
		t.Errorf("second retry in %v, want about 2m", next)
	}
	h.dns.Set("example.com", dnstest.Drop)
	h.clock.Advance(2 * time.Hour)
	h.walk(t, "example.com")
	if !slices.Equal(h.white(), want) {
		t.Fatalf("after timeout: white %v", h.white())
	}
}

func TestDefinitiveChangeReplacesSet(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.walk(t, "example.com")
	h.dns.Replace(t, "example.com", 16, `example.com. 600 IN TXT "v=spf1 ip4:198.51.100.0/24 -all"`)
	h.clock.Advance(2 * time.Hour)
	h.d.walker = spf.NewWalker(&spf.Client{Servers: []string{h.dns.Addr}, Timeout: time.Second}, spf.Config{Now: h.clock.Now})
	h.walk(t, "example.com")
	if got := h.white(); !slices.Equal(got, []string{"198.51.100.0/24"}) {
		t.Fatalf("white %v", got)
	}
}

func TestLostRecordKeptForGracePeriod(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.walk(t, "example.com")
	h.dns.Replace(t, "example.com", 16, `example.com. 600 IN TXT "not spf any more"`)
	h.clock.Advance(2 * time.Hour) // past the cache's TTL
	h.walk(t, "example.com")
	ds := h.domain("example.com")
	if len(h.white()) != 2 || ds.LostSince.IsZero() {
		t.Fatalf("networks dropped at once: %v (lost since %v)", h.white(), ds.LostSince)
	}
	h.clock.Advance(6 * 24 * time.Hour)
	h.walk(t, "example.com")
	if len(h.white()) != 2 {
		t.Fatalf("dropped before the grace period ended: %v", h.white())
	}
	h.clock.Advance(25 * time.Hour)
	h.walk(t, "example.com")
	if len(h.white()) != 0 {
		t.Fatalf("kept after the grace period: %v", h.white())
	}
}

func TestWalkIntervalClampedToMax(t *testing.T) {
	h := newHarness(t, `example.com. 604800 IN TXT "v=spf1 ip4:192.0.2.0/24"`, "domain example.com\nwalk max-interval 12h")
	h.walk(t, "example.com")
	if next := h.domain("example.com").NextWalk.Sub(h.clock.Now()); next > 12*time.Hour || next < 10*time.Hour {
		t.Errorf("next walk in %v, want at most 12h", next)
	}
}

func TestRunStopsAndSavesOnCancel(t *testing.T) {
	h := newHarness(t, exampleZone, fmt.Sprintf("domain example.com\nsocket %q", "/tmp/placeholder"))
	h.d.opts.SocketPath = filepath.Join(h.dir, "spfd.sock")
	var notes []string
	var nmu sync.Mutex
	h.d.opts.Notify = func(s string) { nmu.Lock(); notes = append(notes, s); nmu.Unlock() }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	waitUntil(t, func() bool { return len(h.white()) == 2 })
	var out bytes.Buffer
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", "203.0.113.1"}}, &out); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	nmu.Lock()
	if !slices.Equal(notes, []string{"READY=1", "STOPPING=1"}) {
		t.Errorf("notifications %q", notes)
	}
	nmu.Unlock()
	data, err := os.ReadFile(filepath.Join(h.dir, "state", "state"))
	if err != nil || !strings.Contains(string(data), "203.0.113.1/32") || !strings.Contains(string(data), `"name":"example.com"`) {
		t.Fatalf("final snapshot: %v\n%s", err, data)
	}
	if _, err := os.Stat(h.d.opts.SocketPath); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Each pass of walks is summed up in one info line, failures included.
func TestWalkPassSummaryLogged(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com\ndomain missing.example")
	var buf runtest.Buffer
	h.d.logger = log.NewLogfmtLogger(&buf)
	h.walk(t, "example.com", "missing.example")
	got := buf.String()
	for _, want := range []string{`msg="walked domains" domains=2 complete=1 temporary-failure=0 permanent-failure=1 refused=0 networks=2`, `first-problem="missing.example: no such domain (NXDOMAIN)"`} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %s:\n%s", want, got)
		}
	}
}

// domain returns a copy of a domain's state.
func (d *Daemon) domain(name string) state.DomainState {
	ds, _ := d.state.Domain(name)
	return ds
}

// A table changed behind spfd's back is put right at the next sync and
// the repair is logged once, at info level; the first sync, which only
// makes the table, is no repair.
func TestDriftRepairLogged(t *testing.T) {
	var file *pftable.File
	h := newHarnessWith(t, exampleZone, "domain example.com", func(o *Options) {
		file = pftable.NewFile(nil)
		o.Backend = file
	})
	black := tableName(h.d.cfg.Black)
	path := filepath.Join(h.dir, "black.txt")
	file.Tables = map[string]pftable.FileTable{tableName(h.d.cfg.White): {Path: filepath.Join(h.dir, "white.txt")}, black: {Path: path}}
	var buf runtest.Buffer
	h.d.logger = log.NewLogfmtLogger(&buf)
	ctx := context.Background()
	if err := h.d.syncTables(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.d.syncTables(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "repaired") {
		t.Fatalf("a repair logged with nothing changed:\n%s", buf.String())
	}
	if err := os.WriteFile(path, []byte("198.51.100.1/32\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := h.d.syncTables(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(buf.String(), "repaired"); n != 1 || !strings.Contains(buf.String(), "level=info") || !strings.Contains(buf.String(), "table="+black) {
		t.Errorf("want one info line for the repair of %s, got %d:\n%s", black, n, buf.String())
	}
}

// blockedBackend holds every sync until released, as a kernel with a
// million elements to read back would.
type blockedBackend struct {
	*pftable.Fake
	release chan struct{}
}

func (b blockedBackend) Sync(ctx context.Context, table string, set *prefixset.Set) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Fake.Sync(ctx, table, set)
}

// The socket answers and changes are acknowledged while the tables are
// still being reconciled at start; the reconcile finishes in the
// background.
func TestServesBeforeReconcile(t *testing.T) {
	backend := blockedBackend{Fake: pftable.NewFake(), release: make(chan struct{})}
	h := newHarnessWith(t, exampleZone, "", func(o *Options) { o.Backend = backend })
	h.fake = backend.Fake
	h.run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	waitUntil(t, func() bool {
		_, err := os.Stat(h.d.opts.SocketPath)
		return err == nil
	})
	var out bytes.Buffer
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", "203.0.113.1"}}, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"show", "status"}}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "sync pending") || !strings.Contains(out.String(), "blacklist 1 entry") {
		t.Errorf("status while reconciling:\n%s", out.String())
	}
	close(backend.release)
	waitUntil(t, func() bool { return slices.Equal(h.table(h.d.cfg.Black), []string{"203.0.113.1/32"}) })
}

// A ban from a batch of log lines is journalled with the position after
// the batch: after a crash (no snapshot), the state read back resumes
// there, so those lines are not counted again.
func TestBanJournalledWithPosition(t *testing.T) {
	h := newHarness(t, exampleZone, "")
	pos := logwatch.Position{Path: "/var/log/authlog", Dev: 1, Ino: 2, Offset: 4096, Head: "4e6f76"}
	h.d.applyOutcomes(config.LogSource{}, []logwatch.Outcome{{Action: logwatch.Ban, Addr: netip.MustParseAddr("203.0.113.9"), Rule: "sshd", TTL: time.Hour}}, pos)
	// Read the directory back as a restart after SIGKILL would: the
	// snapshot from the start, then the journal.
	st, _, err := state.Open(filepath.Join(h.dir, "state"), h.clock.Now, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw := st.Position(func(raw json.RawMessage) bool { return strings.Contains(string(raw), pos.Path) })
	var got logwatch.Position
	if raw == nil || json.Unmarshal(raw, &got) != nil || got != pos {
		t.Errorf("position after replay %s, want %+v", raw, pos)
	}
}

// show status says when the backend is reading tables back in the
// background (after a crash or a foreign commit), which keeps a core busy
// at a million entries.
func TestStatusSaysReadingBack(t *testing.T) {
	h := newHarness(t, exampleZone, "")
	h.run(t)
	waitUntil(t, func() bool {
		_, err := os.Stat(h.d.opts.SocketPath)
		return err == nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	status := func(json bool) string {
		var out bytes.Buffer
		if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"show", "status"}, JSON: json}, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if s := status(false); strings.Contains(s, "reading back") {
		t.Fatalf("reading back before any read:\n%s", s)
	}
	h.fake.SetReadingBack("black")
	if s := status(false); !strings.Contains(s, "reading back black from the kernel in the background\n") {
		t.Errorf("status:\n%s", s)
	}
	if s := status(true); !strings.Contains(s, `"reading_back":["black"]`) {
		t.Errorf("status -j:\n%s", s)
	}
}

// Log events from a whitelisted address are never counted, also before
// the first sync has pushed the whitelist (logs are followed from the
// start) and for an entry added since the last sync.
func TestExemptBeforeSync(t *testing.T) {
	h := newHarness(t, exampleZone, "whitelist 198.51.100.0/24")
	if !h.d.state.Exempt(netip.MustParseAddr("198.51.100.9")) {
		t.Error("a configured whitelist network is not exempt before the first sync")
	}
	if h.d.state.Exempt(netip.MustParseAddr("203.0.113.9")) {
		t.Error("an address outside the whitelist is exempt")
	}
	if err := h.d.state.Commit(state.Op{Op: "add", List: "white", Prefix: netip.MustParsePrefix("192.0.2.77/32"), Source: state.SourceManual}); err != nil {
		t.Fatal(err)
	}
	if !h.d.state.Exempt(netip.MustParseAddr("192.0.2.77")) || !h.d.state.Exempt(netip.MustParseAddr("::ffff:192.0.2.77")) {
		t.Error("a whitelist entry added since the last sync is not exempt")
	}
}

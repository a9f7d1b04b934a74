package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/dnstest"
	"github.com/spfd/spfd/internal/runtest"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/logwatch"
	"github.com/spfd/spfd/spf"
)

// wideZone is a domain whose tree holds 1 280 /12s through ten includes,
// each term above the per-term floor: together 0.0.0.0/1 and more.
func wideZone(apex string) string {
	s := apex + `. 300 IN TXT "v=spf1`
	var recs string
	for i := range 10 {
		s += fmt.Sprintf(" include:p%d.%s", i, apex)
		var terms []string
		for j := i * 128; j < (i+1)*128; j++ {
			terms = append(terms, fmt.Sprintf("ip4:%d.%d.0.0/12", j>>4, (j&15)<<4))
		}
		recs += fmt.Sprintf("p%d.%s. 300 IN TXT \"v=spf1 %s\"\n", i, apex, strings.Join(terms, " "))
	}
	return s + ` -all"` + "\n" + recs
}

func truncating(srv *dnstest.Server, apex string) {
	for i := range 10 {
		srv.Set(fmt.Sprintf("p%d.%s", i, apex), dnstest.Truncate)
	}
}

// A domain whose record turns too wide keeps its last good set, says so,
// and never widens the whitelist.
func TestRefusedDomainKeepsLastGoodSet(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	var buf runtest.Buffer
	h.d.logger = log.NewLogfmtLogger(&buf)
	h.walk(t, "example.com")
	want := []string{"192.0.2.0/24", "2001:db8::/32"}
	if !slices.Equal(h.white(), want) {
		t.Fatalf("white %v, want %v", h.white(), want)
	}
	h.dns.Replace(t, "example.com", 16, strings.SplitN(wideZone("example.com"), "\n", 2)[0])
	h.dns.Add(t, strings.Split(strings.TrimSpace(strings.SplitN(wideZone("example.com"), "\n", 2)[1]), "\n")...)
	truncating(h.dns, "example.com")
	h.clock.Advance(2 * time.Hour)
	h.walk(t, "example.com")
	if !slices.Equal(h.white(), want) {
		t.Fatalf("after a too-wide record: white %v, want the last good %v", h.white(), want)
	}
	ds := h.domain("example.com")
	if ds.Status != statusRefused {
		t.Errorf("status %q, want %q", ds.Status, statusRefused)
	}
	if !strings.Contains(buf.String(), `msg="domain refused, keeping its last good set" domain=example.com`) {
		t.Errorf("log lacks the refusal:\n%s", buf.String())
	}
	var out bytes.Buffer
	if err := h.d.showDomains(&out, control.Request{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"refused", "networks refused as too broad; the last good set (2 networks) stays", "more than 16777216 (walk max-addresses)"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("show domains lacks %q:\n%s", w, out.String())
		}
	}
}

// The attack end to end: outbound mail to a domain whose SPF tree is too
// wide is captured from the mail log; the whitelist stays as it was and
// the blacklist is still pushed. The admin can delete the captured
// domain, and it stays deleted when mail goes there again.
func TestCapturedWideDomainCannotPoisonWhitelist(t *testing.T) {
	dir := t.TempDir()
	maillog := filepath.Join(dir, "maillog")
	if err := os.WriteFile(maillog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, exampleZone+"\n"+wideZone("evil.example"), fmt.Sprintf(
		"domain example.com\nlog maillog file %q capture yes\nblacklist 198.51.100.7\n", maillog))
	truncating(h.dns, "evil.example")
	ctx := h.run(t)
	waitUntil(t, func() bool { return len(h.white()) == 2 && len(h.black()) == 1 })

	// alice sends it with sendmail(8): OpenSMTPD's local socket.
	line := `Nov 27 20:00:00 mx smtpd[123]: 0a0b0c0d0e0f1011 smtp connected address=local host=mx
Nov 27 20:00:00 mx smtpd[123]: 0a0b0c0d0e0f1011 smtp envelope evpid=1f2e3d4c5b6a7980 from=<alice@example.org> to=<bob@evil.example>
Nov 27 20:00:01 mx smtpd[123]: 6d1b2c3d4e5f6a7b mta delivery evpid=1f2e3d4c5b6a7980 from=<alice@example.org> to=<bob@evil.example> rcpt=<-> source="192.0.2.1" relay="mx.evil.example [192.0.2.99]" delay=1s result="Ok" stat="250 2.0.0 OK"` + "\n"
	appendFile(t, maillog, line)
	waitUntil(t, func() bool {
		ds, ok := h.d.state.Domain("evil.example")
		return ok && ds.Status != ""
	})
	if err := h.d.syncTables(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.white(); !slices.Equal(got, []string{"192.0.2.0/24", "2001:db8::/32"}) {
		t.Fatalf("whitelist after the capture: %v", got)
	}
	if got := h.black(); !slices.Equal(got, []string{"198.51.100.7/32"}) {
		t.Fatalf("blacklist after the capture: %v, want it still pushed", got)
	}
	var out bytes.Buffer
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"show", "domains"}}, &out); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"evil.example", "refused", "captured 2026-11-27T12:00:00Z from " + maillog + `: "Nov 27 20:00:01 mx smtpd[123]`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("show domains lacks %q:\n%s", w, out.String())
		}
	}

	out.Reset()
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"domain", "delete", "evil.example"}}, &out); err != nil {
		t.Fatalf("domain delete of a captured domain: %v", err)
	}
	appendFile(t, maillog, strings.ReplaceAll(line, "evpid=1f2e3d4c5b6a7980", "evpid=1f2e3d4c5b6a7981"))
	appendFile(t, maillog, strings.ReplaceAll(line, "bob@evil.example", "bob@example.com"))
	waitUntil(t, func() bool {
		ds, ok := h.d.state.Domain("example.com")
		return ok && slices.Contains(ds.Origins, OriginCapture)
	})
	_, back := h.d.state.Domain("evil.example")
	if back {
		t.Fatal("a deleted captured domain came back with the next mail")
	}
	h.stop()

	// The removal survives a restart.
	d2, err := New(Options{ConfigPath: h.d.opts.ConfigPath, Now: h.clock.Now, Backend: h.fake,
		Exchanger: &spf.Client{Servers: []string{h.dns.Addr}, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.state.Close()
	if _, ok := d2.state.Domain("evil.example"); ok || !d2.state.CaptureBlocked("evil.example") {
		t.Errorf("after restart: walked %v, blocked %v", ok, d2.state.CaptureBlocked("evil.example"))
	}
}

func TestCaptureIgnore(t *testing.T) {
	h := newHarness(t, exampleZone, "capture ignore { example.net }\nlog maillog file \"/nonexistent\" capture yes")
	h.d.applyOutcomes(h.d.cfg.Logs[0], []logwatch.Outcome{captureOutcome("example.net"), captureOutcome("mail.example.net"), captureOutcome("example.com")}, logwatch.Position{Path: "maillog"})
	if _, ok := h.d.state.Domain("example.net"); ok {
		t.Error("example.net captured despite capture ignore")
	}
	if _, ok := h.d.state.Domain("mail.example.net"); ok {
		t.Error("a subdomain of an ignored domain captured")
	}
	if _, ok := h.d.state.Domain("example.com"); !ok {
		t.Error("example.com not captured")
	}
}

// A restart walks at once the domains whose last walk failed; good,
// fresh ones keep their schedule.
func TestRestartWalksFailedDomainsAtOnce(t *testing.T) {
	h := newHarness(t, exampleZone+"\nbroken.example. 300 IN TXT \"v=spf1 ip4:198.51.100.0/24\"", "domain example.com\ndomain broken.example")
	h.dns.Set("broken.example", dnstest.ServFail)
	h.walk(t, "example.com", "broken.example")
	if err := h.d.snapshot(); err != nil {
		t.Fatal(err)
	}
	h.d.state.Close()
	d2, err := New(Options{ConfigPath: h.d.opts.ConfigPath, Now: h.clock.Now, Backend: h.fake,
		Exchanger: &spf.Client{Servers: []string{h.dns.Addr}, Timeout: 300 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.state.Close()
	now := h.clock.Now()
	if next := d2.domain("broken.example").NextWalk; next.After(now) {
		t.Errorf("failed domain next walk %v, want now (%v)", next, now)
	}
	if next := d2.domain("example.com").NextWalk; !next.After(now.Add(50 * time.Minute)) {
		t.Errorf("good domain next walk %v, want its schedule kept", next)
	}
}

// A pass where every domain failed says so once, at warning level, with
// what each resolver answered.
func TestAllFailedPassWarnsOnce(t *testing.T) {
	h := newHarness(t, exampleZone, "domain a.example\ndomain b.example\ndomain c.example")
	var buf runtest.Buffer
	h.d.logger = log.NewLogfmtLogger(&buf)
	for _, n := range []string{"a.example", "b.example", "c.example"} {
		h.dns.Set(n, dnstest.ServFail)
	}
	h.d.walkDomains(context.Background(), []string{"a.example", "b.example", "c.example"})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line, got %d:\n%s", len(lines), buf.String())
	}
	for _, w := range []string{"level=warn", "every domain failed: DNS looks broken", "temporary-failure=3", h.dns.Addr + ": 0 noerror, 0 nxdomain, 3 servfail"} {
		if !strings.Contains(lines[0], w) {
			t.Errorf("log line lacks %q:\n%s", w, lines[0])
		}
	}
	var out bytes.Buffer
	if err := h.d.showStatus(context.Background(), &out, control.Request{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"resolvers " + h.dns.Addr, "3 temporary-failure", "every domain failed; DNS looks broken", "walk problem: a.example temporary-failure:"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("show status lacks %q:\n%s", w, out.String())
		}
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) black() []string { return h.table(h.d.cfg.Black) }

func captureOutcome(domain string) logwatch.Outcome {
	return logwatch.Outcome{Action: logwatch.Capture, Rule: "capture", Domain: domain, Evidence: "test"}
}

// spfctl domain add and rewalk print what the walk gave and exit 1 when
// it failed, as spfctl walk does.
func TestTriggeredWalkFailureReachesClient(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	ctx := h.run(t)
	waitUntil(t, func() bool { return len(h.white()) == 2 })
	for _, args := range [][]string{{"domain", "add", "missing.example"}, {"rewalk", "missing.example"}} {
		var out bytes.Buffer
		err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: args}, &out)
		if err == nil || !strings.Contains(err.Error(), "walk failed for missing.example") {
			t.Errorf("%q: error %v, want the walk's failure", args, err)
		}
		if !strings.Contains(out.String(), "missing.example\tpermanent-failure\t0 networks") {
			t.Errorf("%q: output %q", args, out.String())
		}
	}
	var out bytes.Buffer
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"rewalk", "example.com"}}, &out); err != nil {
		t.Errorf("rewalk of a good domain: %v", err)
	}

	// Manual entries broader than the floor need force.
	for _, args := range [][]string{{"add", "white", "::/0"}, {"add", "black", "0.0.0.0/0"}, {"add", "white", "10.0.0.0/11"}} {
		err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: args}, &out)
		if err == nil || !strings.Contains(err.Error(), "broader than the walk floor") {
			t.Errorf("%q: error %v, want a refusal", args, err)
		}
	}
	n := h.d.state.Len(state.White) + h.d.state.Len(state.Black)
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", "10.0.0.0/8", "force"}}, &out); err != nil {
		t.Errorf("add with force: %v", err)
	}
	m := h.d.state.Len(state.White) + h.d.state.Len(state.Black)
	if m != n+1 {
		t.Errorf("entries %d after a forced add, want %d", m, n+1)
	}
}

// spfd -n fails on a list file line broader than the floor, unless the
// statement says force; at run time such a line is skipped, not pushed.
func TestListFileBroadLines(t *testing.T) {
	dir := t.TempDir()
	wide := filepath.Join(dir, "wide")
	if err := os.WriteFile(wide, []byte("192.0.2.0/24\n0.0.0.0/0 # everything\n2001:db8::/32\nnot an address\n10.1.2.3/8 ; pieces\n11.0.0.0 - 11.255.255.255\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		conf    string
		err     string
		entries int
	}{
		{fmt.Sprintf("whitelist-file %q\n", wide), wide + ":2: 0.0.0.0/0 is broader than the walk floor /12", 2},
		{fmt.Sprintf("whitelist-file %q\n", wide), wide + ":5: 10.1.2.3 - 11.1.2.2 is broader than the walk floor /12", 2},
		{fmt.Sprintf("whitelist-file %q\n", wide), wide + ":6: 11.0.0.0/8 is broader than the walk floor /12", 2},
		{fmt.Sprintf("whitelist-file %q force\n", wide), "", 29}, // 3 lines, 25 pieces of 10.1.2.3/8, 11.0.0.0/8
	} {
		h := newHarness(t, exampleZone, tt.conf)
		warnings, err := CheckLists(h.d.cfg)
		if (tt.err == "" && err != nil) || (tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err))) {
			t.Errorf("%q: CheckLists error %v, want %q", tt.conf, err, tt.err)
		}
		if len(warnings) != 1 || !strings.Contains(warnings[0], "line 4") {
			t.Errorf("%q: warnings %q, want the bad line 4", tt.conf, warnings)
		}
		n := h.d.state.Len(state.White)
		if n != tt.entries {
			t.Errorf("%q: %d whitelist entries, want %d", tt.conf, n, tt.entries)
		}
	}
}

// The configuration's walk defaults are the walker's: config does not
// import spf, so this keeps them in step.
func TestWalkDefaultsAgree(t *testing.T) {
	w := config.Default().Walk
	got := []int{w.FloorIPv4, w.FloorIPv6, w.MaxLookups, int(w.MaxAddresses4), w.MaxCover6Len}
	want := []int{spf.DefaultMinIPv4Len, spf.DefaultMinIPv6Len, spf.DefaultMaxLookups, spf.DefaultMaxAddresses4, spf.DefaultMaxCover6Len}
	if !slices.Equal(got, want) {
		t.Errorf("config walk defaults %v, spf's %v", got, want)
	}
}

// Exports are for spamd-setup, which misreads IPv6 lines: IPv4 goes to
// the path, IPv6 to the file beside it.
func TestExportSplitsFamilies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "spfd-black.txt")
	h := newHarness(t, exampleZone, fmt.Sprintf("export black %q\nblacklist { 198.51.100.7 2001:db8::7 }\n", path))
	if err := h.d.syncTables(context.Background()); err != nil {
		t.Fatal(err)
	}
	v4, err4 := os.ReadFile(path)
	v6, err6 := os.ReadFile(filepath.Join(dir, "spfd-black-ipv6.txt"))
	if err4 != nil || err6 != nil || string(v4) != "198.51.100.7/32\n" || string(v6) != "2001:db8::7/128\n" {
		t.Fatalf("IPv4 file %q (%v), IPv6 file %q (%v)", v4, err4, v6, err6)
	}
}

// A reload that fails (SIGHUP has no one to tell) shows in show status.
func TestFailedReloadInStatus(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	if err := os.WriteFile(h.d.opts.ConfigPath, []byte("walk frobnicate 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.d.Reload(); err == nil {
		t.Fatal("a bad configuration was accepted")
	}
	var out bytes.Buffer
	if err := h.d.showStatus(context.Background(), &out, control.Request{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "reload: ") || !strings.Contains(out.String(), "unknown walk option") {
		t.Errorf("show status lacks the failed reload:\n%s", out.String())
	}
}

// A feed or BGP route broader than the floor is refused, for either list,
// and said once however often the routes are looked at.
func TestFloorRefusesOnceLogged(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	var buf runtest.Buffer
	h.d.logger = log.NewLogfmtLogger(&buf)
	in := []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("::/0")}
	for range 3 {
		if got := h.d.floor("bgp 127.0.0.4", slices.Clone(in)); !slices.Equal(got, in[1:2]) {
			t.Fatalf("floor gave %v", got)
		}
	}
	if n := strings.Count(buf.String(), "broader than the safety floor"); n != 2 {
		t.Errorf("%d refusals logged for 2 routes looked at 3 times:\n%s", n, buf.String())
	}
}

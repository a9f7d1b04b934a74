// Package daemon wires spfd together: it owns the state (internal/state),
// runs the SPF walk schedule, the log followers and feeds, pushes the lists
// to the table backend, and answers the control commands.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/spfd/spfd/bgp"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/clock"
	"github.com/spfd/spfd/internal/state"
	"github.com/spfd/spfd/listfile"
	"github.com/spfd/spfd/pftable"
	"github.com/spfd/spfd/prefixset"
	"github.com/spfd/spfd/spf"
	"go4.org/netipx"
)

// Options wire a daemon. Only ConfigPath and Logger are required; the rest
// default to the real thing and exist for tests.
type Options struct {
	ConfigPath string
	Macros     map[string]string
	Logger     log.Logger
	Verbose    bool
	// Clock drives every timer and ticker, and tells the time (default
	// the system's).
	Clock clock.Clock
	// Now replaces the time of the system's clock only, its timers kept
	// real (tests that set Clock leave it nil).
	Now func() time.Time
	// Exchanger replaces the DNS client built from the configuration.
	Exchanger spf.Exchanger
	// Backend replaces the table backend built from the configuration.
	Backend pftable.Backend
	// Notify receives sd_notify states (READY=1, ...); nil to skip.
	Notify func(state string)
	// SocketPath overrides the configured control socket.
	SocketPath string
	// Sandbox restricts the process once it has opened what it needs
	// (unveil and pledge on OpenBSD; nil elsewhere).
	Sandbox Sandbox
	// OpenJournal replaces how the state's journal is opened (tests).
	OpenJournal func(path string) (state.JournalFile, error)
}

// Daemon is a running spfd.
type Daemon struct {
	opts    Options
	dumps   dumpShare // copies of the lists for show -v
	metrics *metrics
	traffic traffic
	clock   clock.Clock
	now     func() time.Time
	logger  log.Logger
	verbose atomic.Bool
	started time.Time

	// state is the lists, the domains and the log positions, with their
	// own lock; d.mu guards the daemon's other fields.
	state *state.State

	mu        sync.Mutex
	cfg       *config.Config
	walker    *spf.Walker
	dns       *spf.Client // nil when a test replaced the exchanger
	resolvers []string
	lastPass  walkPass
	backend   pftable.Backend
	// pushed are the covers last pushed to the tables.
	pushed      [2]*prefixset.Set
	pushedCount [2]int
	// repairsSeen is each table's drift-repair count at the last sync.
	repairsSeen map[string]int
	// bgpSeen are the neighbors heard from since the start, and
	// bgpRestored the saved BGP sources already put on hold; only the
	// bgp loop touches them.
	bgpSeen, bgpRestored map[string]bool
	lastSync             time.Time
	syncErr              error
	syncVersion          uint64
	recentErrs           []string
	fileStamps           map[string]time.Time

	logs *logSet // nil until Run starts it
	// reloadMu serialises reloads (and re-reads of changed files): a
	// second waits for the first.
	reloadMu sync.Mutex
	sandbox  *sandboxed // what unveil and pledge allow, once Run applied them; under reloadMu
	// syncMu serialises table syncs with backend replacement, so that a
	// backend is never closed under a running sync.
	syncMu   sync.Mutex
	exporter *pftable.File
	// refusedTold remembers the feed and BGP entries whose refusal was
	// logged (under d.mu).
	refusedTold map[string]struct{}
	speaker     *bgp.Speaker

	dirty chan struct{} // tables need a sync
	// announceDue: the tables were pushed; BGP neighbors are told apart
	// from the sync (see announceLoop).
	announceDue chan struct{}
	save        chan struct{} // state needs a snapshot
	wake        chan struct{} // the scheduler should look again
}

// Origins of a domain.
const (
	OriginConfig  = state.OriginConfig
	OriginRuntime = state.OriginRuntime
	OriginCapture = state.OriginCapture
	originFile    = state.OriginFile
)

// New loads the configuration and the saved state. It does not touch the
// tables or the socket; Run does.
func New(opts Options) (*Daemon, error) {
	if opts.Clock == nil {
		opts.Clock = clock.Real{NowFunc: opts.Now}
	}
	opts.Now = opts.Clock.Now
	if opts.Logger == nil {
		opts.Logger = log.NewNopLogger()
	}
	cfg, err := config.ParseFile(opts.ConfigPath, config.Options{Macros: opts.Macros})
	if err != nil {
		return nil, err
	}
	cfg.CheckFiles()
	d := &Daemon{
		opts:        opts,
		clock:       opts.Clock,
		now:         opts.Now,
		logger:      opts.Logger,
		cfg:         cfg,
		fileStamps:  make(map[string]time.Time),
		dirty:       make(chan struct{}, 1),
		announceDue: make(chan struct{}, 1),
		save:        make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
	}
	d.verbose.Store(opts.Verbose)
	d.metrics = newMetrics(d)
	for _, w := range cfg.Warnings {
		d.warn("config", w)
	}
	st, warnings, err := state.Open(cfg.StateDir, d.now, state.Options{OpenJournal: opts.OpenJournal})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		d.warn("state", w)
	}
	d.state = st
	// A domain whose last walk failed, or that never had a good one, is
	// walked at once: a restart is how an admin asks again after fixing
	// the resolver. Good, fresh results keep their schedule.
	for _, ds := range st.Domains() {
		if ds.Status != spf.Complete.String() || ds.LastGood.IsZero() {
			st.UpdateDomain(ds.Name, func(ds *state.DomainState, _ func([]netip.Prefix) (int, int)) { ds.NextWalk = d.now() })
		}
	}
	if err := d.configure(cfg); err != nil {
		st.Close()
		return nil, err
	}
	return d, nil
}

// The log's levels are go-kit's; spfd maps them to syslog priorities.
func (d *Daemon) info(keyvals ...any) { level.Info(d.logger).Log(keyvals...) }

func (d *Daemon) debug(keyvals ...any) {
	if d.verbose.Load() {
		level.Debug(d.logger).Log(keyvals...)
	}
}

func (d *Daemon) warn(what, msg string) {
	level.Warn(d.logger).Log("what", what, "msg", msg)
}

// recordError logs an error and keeps it for spfctl show status.
func (d *Daemon) recordError(what string, err error) {
	level.Error(d.logger).Log("what", what, "err", err)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.recentErrs = append(d.recentErrs, fmt.Sprintf("%s %s: %v", d.now().UTC().Format(time.RFC3339), what, err))
	if len(d.recentErrs) > 10 {
		d.recentErrs = d.recentErrs[len(d.recentErrs)-10:]
	}
}

// configure applies a configuration: resolvers, backend, static entries,
// ignore networks and the configured domains. The caller holds no lock;
// configure takes it.
func (d *Daemon) configure(cfg *config.Config) error {
	d.mu.Lock()
	old, oldBackend, walker, client, servers := d.cfg, d.backend, d.walker, d.dns, d.resolvers
	d.mu.Unlock()
	// Kernel handles (/dev/pf, the netlink socket) are opened once and
	// kept: under unveil /dev/pf cannot be opened again. Only a change to
	// the backend's own settings builds a new one.
	if oldBackend != nil && (old.MetricsListen != cfg.MetricsListen || old.MetricsPublic != cfg.MetricsPublic) {
		return fmt.Errorf("metrics listen changes from %q to %q: that needs a restart", old.MetricsListen, cfg.MetricsListen)
	}
	backend := oldBackend
	if backend == nil || backendKey(old) != backendKey(cfg) {
		switch {
		case d.opts.Backend != nil:
			backend = d.opts.Backend
		case backend != nil && old.White.Backend != cfg.White.Backend:
			return fmt.Errorf("the table backend changes from %s to %s: that needs a restart", old.White.Backend, cfg.White.Backend)
		case backend != nil && d.reconfigureKernelBackend(backend, cfg):
			// The same kernel handle, with the new settings.
		default:
			var err error
			if backend, err = newBackend(cfg); err != nil {
				return err
			}
			if dn, ok := backend.(pftable.DriftNotifier); ok {
				dn.NotifyDrift(func() { d.signal(d.dirty) })
			}
		}
	}
	// The walker and its cache stay unless what it depends on changed.
	if walker == nil || walkerKey(old) != walkerKey(cfg) {
		ex := d.opts.Exchanger
		client, _ = ex.(*spf.Client)
		servers = []string{"(test exchanger)"}
		if client != nil {
			servers = client.Servers
		}
		if ex == nil {
			servers = cfg.Resolvers
			if len(servers) == 0 {
				var err error
				if servers, err = spf.SystemServers(); err != nil {
					return fmt.Errorf("resolvers: %w", err)
				}
			}
			client = &spf.Client{Servers: servers, Timeout: cfg.Walk.Timeout, Retries: cfg.Walk.Retries}
			ex = client
		}
		walker = spf.NewWalker(ex, spf.Config{
			MinIPv4Len:    cfg.Walk.FloorIPv4,
			MinIPv6Len:    cfg.Walk.FloorIPv6,
			MaxLookups:    cfg.Walk.MaxLookups,
			MaxAddresses4: cfg.Walk.MaxAddresses4,
			MaxCover6Len:  cfg.Walk.MaxCover6Len,
			Concurrency:   cfg.Walk.Concurrency,
			Lenient:       cfg.Walk.Lenient,
			Now:           d.now,
		})
	}
	staticWhite, staticBlack := d.readStatic(cfg)
	fileDomains := d.readDomainFiles(cfg)

	if oldBackend != nil && oldBackend != backend {
		// Not under a running sync.
		d.syncMu.Lock()
		d.mu.Lock()
		d.backend = backend
		d.mu.Unlock()
		oldBackend.Close()
		d.syncMu.Unlock()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg, d.walker, d.backend = cfg, walker, backend
	d.dns, d.resolvers = client, servers
	st := d.state
	st.SetIgnore(append(slices.Clone(cfg.Ignore), hostAddresses()...))
	st.SetMaxOffenders(cfg.RepeatOffenders.Remember)
	st.SetSource(state.White, state.SourceStatic, staticWhite, time.Time{})
	st.SetSource(state.Black, state.SourceStatic, staticBlack, time.Time{})
	st.SetOrigin(OriginConfig, cfg.Domains)
	for _, f := range cfg.DomainFiles {
		st.SetOrigin(originFile+f, fileDomains[f])
	}
	// Files no longer configured, and captures now ignored, let go.
	st.DropOrigins(func(name, o string) bool {
		if f, ok := strings.CutPrefix(o, originFile); ok {
			return !slices.Contains(cfg.DomainFiles, f)
		}
		return o == OriginCapture && config.CaptureIgnored(cfg.CaptureIgnore, name)
	})
	d.logDropped()
	d.signal(d.dirty)
	d.signal(d.save)
	d.signal(d.wake)
	return nil
}

// backendKey is what the table backend is built from: the same key, the
// same backend. pf's tables are named at each sync, so one handle serves
// any names.
func backendKey(cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	if cfg.White.Backend == "pf" {
		return "pf"
	}
	return fmt.Sprintf("%#v %#v %q %v %v", cfg.White, cfg.Black, cfg.NFTable, cfg.NFTRulePorts, cfg.NFTElementCounters)
}

// walkerKey is what the DNS client and the walker are built from.
func walkerKey(cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	w := cfg.Walk
	return fmt.Sprintf("%q %v %d %d %d %d %d %d %d %v", cfg.Resolvers, w.Timeout, w.Retries, w.FloorIPv4, w.FloorIPv6,
		w.MaxLookups, w.MaxAddresses4, w.MaxCover6Len, w.Concurrency, w.Lenient)
}

// readStatic gathers the configured entries and list files. A list line
// broader than the walk floor is skipped unless its statement says force.
func (d *Daemon) readStatic(cfg *config.Config) (white, black []netip.Prefix) {
	white = slices.Clone(cfg.StaticWhite)
	black = slices.Clone(cfg.StaticBlack)
	for _, f := range cfg.WhiteFiles {
		ps, broad, bad, err := ReadList(cfg, f)
		d.listProblems(f, slices.Concat(broad, bad), err)
		white = append(white, ps...)
	}
	for _, f := range cfg.BlackFiles {
		ps, broad, bad, err := ReadList(cfg, f)
		d.listProblems(f, slices.Concat(broad, bad), err)
		black = append(black, ps...)
	}
	return white, black
}

func (d *Daemon) listProblems(path string, problems []string, err error) {
	if err != nil {
		d.warn("list", err.Error())
		return
	}
	for _, p := range problems {
		d.warn("list", p)
	}
	d.stamp(path)
}

// ReadList reads a list file of the configuration: its entries, the
// entries broader than the walk floor (file:line), which are left out
// unless the file's statement says force, and the bad lines.
func ReadList(cfg *config.Config, path string) (ps []netip.Prefix, broad, bad []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer f.Close()
	var out []netip.Prefix
	forced := cfg.ForcedFiles[path]
	errs := listfile.Scan(f, func(n int, ps []netip.Prefix) {
		// A line is judged whole: a range, or a prefix with host bits
		// set, comes as pieces that may each pass the floor.
		if !forced && broaderThanFloor(cfg.Walk, ps) {
			broad = append(broad, fmt.Sprintf("%s:%d: %s is broader than the walk floor /%d, skipped (add force to the statement if you mean it)",
				path, n, describe(ps), cfg.Walk.Floor(ps[0])))
			return
		}
		out = append(out, ps...)
	})
	for _, e := range errs {
		bad = append(bad, fmt.Sprintf("%s: %v", path, e))
	}
	return out, broad, bad, nil
}

// broaderThanFloor reports whether the addresses of one list line cover
// more than one prefix at the walk floor does.
func broaderThanFloor(w config.Walk, ps []netip.Prefix) bool {
	var b prefixset.Builder
	for _, p := range ps {
		if w.Broad(p) {
			return true
		}
		b.Add(p)
	}
	v4, v6 := b.Set().Addresses()
	return v4.Cmp(prefixset.PrefixCount(32-w.FloorIPv4)) > 0 || v6.Cmp(prefixset.PrefixCount(128-w.FloorIPv6)) > 0
}

// describe names a line's entries: the one prefix, or the range.
func describe(ps []netip.Prefix) string {
	if len(ps) == 1 {
		return ps[0].String()
	}
	return ps[0].Addr().String() + " - " + netipx.RangeOfPrefix(ps[len(ps)-1]).To().String()
}

// CheckLists is spfd -n's check of the list files: an entry broader than
// the floor fails it, as one in spfd.conf does; unreadable files and bad
// lines are only warnings, as at run time.
func CheckLists(cfg *config.Config) (warnings []string, err error) {
	var errs []error
	for _, path := range slices.Concat(cfg.WhiteFiles, cfg.BlackFiles) {
		_, broad, bad, err := ReadList(cfg, path)
		if err != nil {
			continue // CheckFiles warns
		}
		for _, b := range broad {
			errs = append(errs, errors.New(b))
		}
		warnings = append(warnings, bad...)
	}
	return warnings, errors.Join(errs...)
}

func (d *Daemon) readDomainFiles(cfg *config.Config) map[string][]string {
	return readFiles(d, "domain-file", cfg.DomainFiles, spf.ReadDomains)
}

// readFiles parses each file, warns about unreadable files and bad lines
// (which are skipped), and notes their times so changes are picked up.
func readFiles[T any](d *Daemon, what string, files []string, parse func(io.Reader) ([]T, []error)) map[string][]T {
	out := make(map[string][]T)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			d.warn(what, err.Error())
			continue
		}
		items, errs := parse(fh)
		fh.Close()
		for _, e := range errs {
			d.warn(what, fmt.Sprintf("%s: %v", f, e))
		}
		out[f] = items
		d.stamp(f)
	}
	return out
}

func (d *Daemon) stamp(path string) {
	if fi, err := os.Stat(path); err == nil {
		d.mu.Lock()
		d.fileStamps[path] = fi.ModTime()
		d.mu.Unlock()
	}
}

// filesChanged reports whether a configured list or domain file appeared
// or changed since it was read.
func (d *Daemon) filesChanged() bool {
	d.mu.Lock()
	cfg := d.cfg
	stamps := make(map[string]time.Time, len(d.fileStamps))
	for k, v := range d.fileStamps {
		stamps[k] = v
	}
	d.mu.Unlock()
	for _, f := range slices.Concat(cfg.DomainFiles, cfg.WhiteFiles, cfg.BlackFiles) {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		if t, ok := stamps[f]; !ok || !t.Equal(fi.ModTime()) {
			return true
		}
	}
	return false
}

// hostAddresses are this host's own addresses: never blacklisted.
func hostAddresses() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return out
}

// logDropped logs the domains the state dropped with their networks.
func (d *Daemon) logDropped() {
	for _, name := range d.state.TakeDropped() {
		d.info("msg", "domain dropped", "domain", name)
	}
}

// signal wakes a loop without blocking.
func (d *Daemon) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// commit journals ops and applies them: the change is acknowledged only
// once it is on disk, and applied in journal order. The caller must not
// hold d.mu: the journal is written and synced without it (group commit),
// so readers and log events never wait on the disk.
func (d *Daemon) commit(ops ...state.Op) error {
	err := d.state.Commit(ops...)
	d.logDropped()
	if err != nil {
		return err
	}
	d.signal(d.dirty)
	d.signal(d.save)
	return nil
}

// commitIfAny commits ops, if there are any.
func (d *Daemon) commitIfAny(ops ...state.Op) error {
	if len(ops) == 0 {
		return nil
	}
	return d.commit(ops...)
}

// Reload reads the configuration again; a bad one is rejected and the old
// one kept.
func (d *Daemon) Reload() error {
	err := d.reload()
	if err != nil {
		// SIGHUP has no one to answer: show status says it.
		d.recordError("reload", err)
	}
	return err
}

func (d *Daemon) reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, err := config.ParseFile(d.opts.ConfigPath, config.Options{Macros: d.opts.Macros})
	if err != nil {
		return fmt.Errorf("reload: %w (keeping the running configuration)", err)
	}
	cfg.CheckFiles()
	for _, w := range cfg.Warnings {
		d.warn("config", w)
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	if err := d.sandbox.allows(cfg); err != nil {
		return fmt.Errorf("reload: %w (keeping the running configuration)", err)
	}
	if cfg.StateDir != old.StateDir || cfg.Socket != old.Socket {
		d.warn("config", "state-directory and socket changes take effect at the next restart")
	}
	if err := d.configure(cfg); err != nil {
		return fmt.Errorf("reload: %w (keeping the running configuration)", err)
	}
	if d.logs != nil {
		d.logs.update(d, cfg)
	}
	d.info("msg", "configuration reloaded")
	return nil
}

// Run serves until ctx ends: the control socket, the walk scheduler, table
// syncs, expiry and snapshots. On return the state is saved.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = d.now()
	d.mu.Lock()
	cfg := d.cfg
	d.mu.Unlock()
	socket := cfg.Socket
	if d.opts.SocketPath != "" {
		socket = d.opts.SocketPath
	}
	gid := -1
	if cfg.SocketGroup != "" {
		g, err := user.LookupGroup(cfg.SocketGroup)
		if err != nil {
			return fmt.Errorf("socket group: %w", err)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	me := os.Getuid()
	srv := &control.Server{
		Path:       socket,
		Mode:       cfg.SocketMode,
		GID:        gid,
		Handler:    d.handle,
		Privileged: func(uid int) bool { return uid == 0 || uid == me },
		Logf:       func(f string, a ...any) { d.warn("control", fmt.Sprintf(f, a...)) },
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	var metricsLn net.Listener
	if cfg.MetricsListen != "" {
		var err error
		if metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		defer metricsLn.Close() // for the returns before it is served
		d.info("msg", "serving metrics", "address", metricsLn.Addr().String())
	}
	// /dev/pf and the socket are open: from here on only what the plan
	// allows. At securelevel 2 pf still takes DIOCRSETADDRS and
	// DIOCRGETTSTATS; only creating a table (DIOCRADDTABLES) is refused.
	sb, err := restrict(d.opts.Sandbox, cfg, d.opts.ConfigPath, socket)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	d.reloadMu.Lock()
	d.sandbox = sb
	d.reloadMu.Unlock()
	// The tables are reconciled with the restored state by the sync loop,
	// in the background: with a million elements in the kernel that takes
	// a while, and the socket and the logs must not wait for it.

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				select {
				case errc <- fmt.Errorf("%s: %w", name, err):
				default:
				}
				cancel()
			}
		}()
	}
	run("control", srv.Serve)
	run("scheduler", d.scheduleLoop)
	run("sync", d.syncLoop)
	run("expiry", d.expiryLoop)
	run("save", d.saveLoop)
	run("announce", d.announceLoop)
	run("files", d.filesLoop)
	run("samples", d.sampleLoop)
	if metricsLn != nil {
		run("metrics", func(ctx context.Context) error { return d.serveMetrics(ctx, metricsLn) })
	}
	if sp, err := d.startBGP(ctx, cfg); err != nil {
		cancel()
		wg.Wait()
		return err
	} else if sp != nil {
		d.mu.Lock()
		d.speaker = sp
		d.mu.Unlock()
		d.signal(d.announceDue) // a sync before the speaker existed announced nothing
		run("bgp", func(ctx context.Context) error { return d.bgpLoop(ctx, sp) })
	}
	d.reloadMu.Lock()
	d.logs = newLogSet(ctx)
	d.mu.Lock()
	cfg = d.cfg // a reload may have come before Run
	d.mu.Unlock()
	d.logs.update(d, cfg)
	d.reloadMu.Unlock()
	if d.opts.Notify != nil {
		d.opts.Notify("READY=1")
	}
	d.mu.Lock()
	d.info("msg", "spfd started", "socket", socket, "backend", d.backend.Kind(),
		"white", d.state.Len(state.White), "black", d.state.Len(state.Black), "domains", len(d.state.DomainNames()))
	d.mu.Unlock()
	<-ctx.Done()
	if d.opts.Notify != nil {
		d.opts.Notify("STOPPING=1")
	}
	d.reloadMu.Lock()
	d.logs.stop()
	d.logs = nil
	d.reloadMu.Unlock()
	wg.Wait()
	var runErr error
	select {
	case runErr = <-errc:
	default:
	}
	if err := d.snapshot(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("final snapshot: %w", err))
	}
	d.state.Close()
	d.backend.Close()
	d.info("msg", "spfd stopped")
	return runErr
}

// syncLoop pushes the lists to the tables after changes, coalescing bursts,
// and repairs drift on a timer.
// A burst of changes that lands while a sync runs is pushed by the one
// sync after it.
func (d *Daemon) syncLoop(ctx context.Context) error {
	repair := d.clock.NewTicker(time.Minute)
	defer repair.Stop()
	retry := d.clock.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	if err := d.syncTables(ctx); err != nil {
		retry.Reset(5 * time.Second)
	}
	// Start-up (the state loaded, the first covers, the tables filled)
	// peaks at several times what spfd holds after it: give that back to
	// the system now rather than over the next minutes.
	debug.FreeOSMemory()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.dirty:
		case <-repair.C():
		case <-retry.C():
		}
		retry.Stop()
		if err := d.syncTables(ctx); err != nil {
			retry.Reset(5 * time.Second)
		}
	}
}

// logRepairs logs, at info level, each time the backend found table
// changed behind spfd's back since the last sync (nft flush ruleset, pfctl
// -F, an edited file) and put it right. The first sync only sets the
// baseline: creating a table pf.conf lacks is no repair.
func (d *Daemon) logRepairs(backend pftable.Backend, table string) {
	rc, ok := backend.(pftable.RepairCounter)
	if !ok {
		return
	}
	n := rc.Repairs(table)
	d.mu.Lock()
	if d.repairsSeen == nil {
		d.repairsSeen = make(map[string]int)
	}
	last, seen := d.repairsSeen[table]
	d.repairsSeen[table] = n
	d.mu.Unlock()
	if seen && n > last {
		d.info("msg", "table changed behind spfd's back; repaired", "table", table, "repairs", n)
	}
}

// syncTables computes the covers and pushes both tables.
func (d *Daemon) syncTables(ctx context.Context) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	d.mu.Lock()
	backend, cfg := d.backend, d.cfg
	d.mu.Unlock()
	start := time.Now() // real time: the log says what a sync costs
	ws, bs, version := d.state.Covers()
	computed := time.Since(start)
	var errs []error
	for _, t := range []struct {
		name string
		set  *prefixset.Set
	}{{tableName(cfg.White), ws}, {tableName(cfg.Black), bs}} {
		if err := backend.Sync(ctx, t.name, t.set); err != nil {
			errs = append(errs, err)
		}
		d.logRepairs(backend, t.name)
	}
	if err := d.export(ctx, cfg, ws, bs); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	result := "ok"
	if err != nil {
		result = "error"
	}
	d.metrics.syncs.WithLabelValues(backend.Kind(), result).Inc()
	counts := [2]int{ws.Count(), bs.Count()}
	d.mu.Lock()
	d.pushed = [2]*prefixset.Set{ws, bs}
	d.pushedCount = counts
	d.syncVersion = version
	d.lastSync = d.now()
	d.syncErr = err
	d.mu.Unlock()
	d.signal(d.announceDue) // after pushed is set: announceLoop reads it
	if err != nil {
		d.recordError("sync", err)
	} else {
		d.debug("msg", "tables synced", "white", counts[state.White], "black", counts[state.Black],
			"covers", computed.Round(time.Microsecond), "took", time.Since(start).Round(time.Microsecond))
	}
	return err
}

// covers returns what the tables hold once the lists as they are now are
// pushed, so that a change acknowledged to spfctl shows in the next
// request before the sync loop has pushed it. The state keeps the last
// covers and patches them, so this is cheap when little changed.
func (d *Daemon) covers() [2]*prefixset.Set {
	ws, bs, _ := d.state.Covers()
	return [2]*prefixset.Set{ws, bs}
}

// tableName is how the backend knows a table: the file path or the name.
func tableName(t config.Table) string {
	if t.Backend == "file" {
		return t.Path
	}
	return t.Name
}

func newBackend(cfg *config.Config) (pftable.Backend, error) {
	switch cfg.White.Backend {
	case "file":
		tables := map[string]pftable.FileTable{}
		for _, t := range []config.Table{cfg.White, cfg.Black} {
			tables[t.Path] = pftable.FileTable{Path: t.Path, Command: t.Command}
		}
		return pftable.NewFile(tables), nil
	}
	return newKernelBackend(cfg)
}

func errUnavailable(backend string) error {
	return fmt.Errorf("backend %q is not available on this system", backend)
}

// expiryLoop drops expired holds.
func (d *Daemon) expiryLoop(ctx context.Context) error {
	t := d.clock.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			d.expire()
		}
	}
}

func (d *Daemon) expire() []state.Removal {
	removed := d.state.Expire()
	d.expireCaptured()
	if len(removed) > 0 {
		for _, r := range removed {
			d.debug("msg", "expired", "list", r.List, "prefix", r.Prefix, "source", r.Source)
		}
		d.signal(d.dirty)
		d.signal(d.save)
	}
	return removed
}

// saveLoop writes a snapshot after changes, waiting a little so bursts
// share one; the wait grows with the snapshot's cost.
func (d *Daemon) saveLoop(ctx context.Context) error {
	delay := 2 * time.Second
	positions := d.clock.NewTicker(time.Minute)
	defer positions.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.save:
		case <-positions.C():
			if !d.state.PositionsMoved() {
				continue
			}
		}
		wait := d.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			wait.Stop()
			return nil
		case <-wait.C():
		}
		start := time.Now() // the snapshot's real cost, not the clock's
		if err := d.snapshot(); err != nil {
			d.recordError("snapshot", err)
		}
		delay = max(2*time.Second, 10*time.Since(start))
	}
}

// snapshot writes the state and starts a new journal generation.
func (d *Daemon) snapshot() error { return d.state.Snapshot() }

// filesLoop re-reads list and domain files that appeared or changed.
func (d *Daemon) filesLoop(ctx context.Context) error {
	t := d.clock.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if d.filesChanged() {
				d.reloadMu.Lock()
				d.mu.Lock()
				cfg := d.cfg
				d.mu.Unlock()
				if err := d.configure(cfg); err != nil {
					d.recordError("files", err)
				}
				d.reloadMu.Unlock()
			}
		}
	}
}

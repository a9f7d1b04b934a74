package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

type fakeSandbox struct {
	mu    sync.Mutex
	calls []string
	// socketExisted records whether the control socket was there when
	// the first unveil came: it must be created before.
	socket        string
	socketExisted bool
}

func (f *fakeSandbox) Unveil(path, perms string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		_, err := os.Stat(f.socket)
		f.socketExisted = err == nil
	}
	f.calls = append(f.calls, "unveil "+path+" "+perms)
	return nil
}

func (f *fakeSandbox) UnveilBlock() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "unveil-block")
	return nil
}

func (f *fakeSandbox) Pledge(p string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "pledge "+p)
	return nil
}

func TestSandboxPlan(t *testing.T) {
	cfg, err := config.Parse("/etc/spfd.conf", strings.NewReader(`state-directory "/var/db/spfd"
table white pf "spfd-white"
table black pf "spfd-black"
domain-file "/etc/spfd/common_domains.txt"
log sshd file "/var/log/authlog"
log maillog file "/var/log/maillog"
`), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	paths, promises := sandboxPlan(cfg, "/etc/spfd.conf", "/var/run/spfd.sock")
	want := []Unveiled{{"/dev/log", "rw"}, {"/etc/resolv.conf", "r"}, {"/etc/spfd", "r"}, {"/etc/spfd.conf", "r"},
		{"/var/db/spfd", "rwc"}, {"/var/log", "r"}, {"/var/run", "rwc"}}
	if !slices.Equal(paths, want) {
		t.Errorf("unveil\n got %v\nwant %v", paths, want)
	}
	if promises != "cpath dns fattr inet pf rpath stdio unix wpath" {
		t.Errorf("pledge %q", promises)
	}
	// A file backend with a command needs exec, and the command unveiled x.
	cfg2, _ := config.Parse("x", strings.NewReader(`table white file "/var/spfd/w" command { "/sbin/pfctl" "-q" }
table black file "/var/spfd/b"
`), config.Options{})
	paths, promises = sandboxPlan(cfg2, "/etc/spfd.conf", "/var/run/spfd.sock")
	if !slices.Contains(paths, Unveiled{"/sbin/pfctl", "x"}) || !slices.Contains(paths, Unveiled{"/var/spfd", "rwc"}) ||
		!strings.Contains(promises, "exec") || strings.Contains(promises, "pf ") {
		t.Errorf("file backend: %v %q", paths, promises)
	}
}

// Run unveils after the socket exists, blocks further unveils, and
// pledges last.
func TestRunSandboxOrder(t *testing.T) {
	h := newHarness(t, exampleZone, fmt.Sprintf("domain example.com\nsocket %q", filepath.Join(t.TempDir(), "x.sock")))
	sock := filepath.Join(h.dir, "spfd.sock")
	h.d.opts.SocketPath = sock
	sb := &fakeSandbox{socket: sock}
	h.d.opts.Sandbox = sb
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.d.Run(ctx) }()
	waitUntil(t, func() bool {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		return len(sb.calls) > 0 && strings.HasPrefix(sb.calls[len(sb.calls)-1], "pledge")
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop")
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	n := len(sb.calls)
	if n < 3 || sb.calls[n-2] != "unveil-block" || !strings.HasPrefix(sb.calls[n-1], "pledge ") {
		t.Fatalf("calls %q", sb.calls)
	}
	for _, c := range sb.calls[:n-2] {
		if !strings.HasPrefix(c, "unveil /") {
			t.Fatalf("calls %q", sb.calls)
		}
	}
	if !sb.socketExisted {
		t.Error("unveil came before the socket was created")
	}
	if !slices.Contains(sb.calls, "unveil "+h.d.cfg.StateDir+" rwc") {
		t.Errorf("state directory not unveiled rwc: %q", sb.calls)
	}
}

// Under the sandbox, a reload that needs what unveil and pledge no longer
// allow (a command to run, a log in a new directory) is refused with a
// clear message; one within them is applied.
func TestReloadWithinSandbox(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	h.d.opts.Sandbox = &fakeSandbox{socket: filepath.Join(h.dir, "spfd.sock")}
	h.run(t)
	waitUntil(t, func() bool {
		h.d.reloadMu.Lock()
		defer h.d.reloadMu.Unlock()
		return h.d.sandbox != nil
	})
	base := fmt.Sprintf("state-directory %q\nwalk grace 7d\n", filepath.Join(h.dir, "state"))
	for _, tt := range []struct {
		name, conf, err string
	}{
		{"a domain more", "domain example.com\ndomain example.org\n", ""},
		{"a command to run", fmt.Sprintf("table white file %q command { \"/usr/bin/true\" }\ntable black file %q\n",
			filepath.Join(h.dir, "state", "white.txt"), filepath.Join(h.dir, "state", "black.txt")), `pledge "exec" is not allowed since start`},
		{"a log elsewhere", "log sshd file \"/nonexistent-dir/authlog\"\n", "/nonexistent-dir (r) is not unveiled since start"},
	} {
		if err := os.WriteFile(h.d.opts.ConfigPath, []byte(base+tt.conf), 0o644); err != nil {
			t.Fatal(err)
		}
		err := h.d.Reload()
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "restart")):
			t.Errorf("%s: error %v, want %q and a restart", tt.name, err, tt.err)
		}
	}
	_, added := h.d.state.Domain("example.org")
	if !added {
		t.Error("the reload within the sandbox was not applied")
	}
}

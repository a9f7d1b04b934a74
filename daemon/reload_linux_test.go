package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spfd/spfd/control"
)

// openCount counts this process's descriptors open on path.
func openCount(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// Many reloads at once leave exactly one follower per log file, the
// backend and walker they found, and a line counts once: the strike
// before the reloads and the one after add up to the threshold of 2,
// neither more nor less.
func TestConcurrentReloadsKeepOneFollower(t *testing.T) {
	dir := t.TempDir()
	authlog := filepath.Join(dir, "authlog")
	if err := os.WriteFile(authlog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, exampleZone, fmt.Sprintf("domain example.com\nlog sshd file %q threshold 2 within 1h\n", authlog))
	ctx := h.run(t)
	waitUntil(t, func() bool { return openCount(t, authlog) == 1 })
	line := func(n int) string {
		return fmt.Sprintf("Nov 27 20:00:0%d host sshd[%d]: Invalid user admin%d from 198.51.100.7 port 4242%d\n", n, 100+n, n, n)
	}
	appendFile(t, authlog, line(1))
	waitUntil(t, func() bool {
		p := h.d.position(authlog)
		return p != nil && p.Offset > 0
	})

	h.d.mu.Lock()
	backend, walker := h.d.backend, h.d.walker
	h.d.mu.Unlock()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.d.Reload(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := openCount(t, authlog); n != 1 {
		t.Fatalf("%d descriptors open on the log after 50 concurrent reloads, want 1", n)
	}
	h.d.mu.Lock()
	sameBackend, sameWalker := h.d.backend == backend, h.d.walker == walker
	h.d.mu.Unlock()
	if !sameBackend || !sameWalker {
		t.Errorf("reload rebuilt what did not change: same backend %v, same walker %v", sameBackend, sameWalker)
	}
	if got := h.black(); len(got) != 0 {
		t.Fatalf("blacklisted after one strike: %v", got)
	}
	appendFile(t, authlog, line(2))
	waitUntil(t, func() bool {
		h.d.syncTables(ctx)
		return len(h.black()) == 1
	})
	if got := h.black(); got[0] != "198.51.100.7/32" {
		t.Errorf("black %v", got)
	}
}

// An acknowledged add is in the very next show, whether or not the sync
// loop has pushed it yet (before: 9 of 20 missed).
func TestShowAfterAdd(t *testing.T) {
	h := newHarness(t, exampleZone, "domain example.com")
	ctx := h.run(t)
	waitUntil(t, func() bool { return len(h.white()) == 2 })
	for i := range 20 {
		addr := fmt.Sprintf("203.0.113.%d", 2*i+1) // odd: no two merge
		var out strings.Builder
		if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"add", "black", addr}}, &out); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"show", "blacklist"}}, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), addr+"/32\n") {
			t.Fatalf("add %d: show blacklist right after lacks %s:\n%s", i, addr, out.String())
		}
	}
}

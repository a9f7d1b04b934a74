package logwatch

import (
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// collector runs a follower and records every line it delivers.
type collector struct {
	mu    sync.Mutex
	lines []string
	pos   Position
	stop  context.CancelFunc
	done  chan error
	f     *Follower
}

func follow(t *testing.T, f *Follower) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{stop: cancel, done: make(chan error, 1), f: f}
	out := make(chan Batch)
	go func() { c.done <- f.Run(ctx, out) }()
	go func() {
		for {
			select {
			case b := <-out:
				c.mu.Lock()
				c.lines = append(c.lines, b.Lines...)
				c.pos = b.Pos
				c.mu.Unlock()
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { c.close(t) })
	return c
}

func (c *collector) close(t *testing.T) {
	c.stop()
	select {
	case err := <-c.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		c.done <- nil
	case <-time.After(5 * time.Second):
		t.Error("follower did not stop when asked")
	}
}

func (c *collector) snapshot() ([]string, Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...), c.pos
}

// waitLines waits until n lines have arrived.
func (c *collector) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lines, _ := c.snapshot()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkSequence proves every numbered line 1..n arrived exactly once.
func checkSequence(t *testing.T, lines []string, n int) {
	t.Helper()
	seen := make(map[int]int)
	for _, l := range lines {
		k, err := strconv.Atoi(strings.TrimPrefix(l, "line "))
		if err != nil {
			t.Fatalf("unexpected line %q", l)
		}
		seen[k]++
	}
	var lost, doubled []int
	for i := 1; i <= n; i++ {
		switch seen[i] {
		case 0:
			lost = append(lost, i)
		case 1:
		default:
			doubled = append(doubled, i)
		}
	}
	if len(lost)+len(doubled) > 0 || len(lines) != n {
		t.Fatalf("%d lines for %d written: lost %v, doubled %v", len(lines), n, head(lost), head(doubled))
	}
}

func head(s []int) []int {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

type logWriter struct {
	t    *testing.T
	path string
	n    int
	f    *os.File
}

func newLogWriter(t *testing.T, path string) *logWriter {
	w := &logWriter{t: t, path: path}
	w.reopen()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *logWriter) reopen() {
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func (w *logWriter) write(k int) {
	for range k {
		w.n++
		fmt.Fprintf(w.f, "line %d\n", w.n)
	}
}

func TestFollowRenameAndCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authlog")
	w := newLogWriter(t, path)
	w.write(5) // before the follower starts: skipped, as tail -f does
	c := follow(t, &Follower{Path: path, Poll: 50 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	before := w.n
	for round := 0; round < 5; round++ {
		w.write(200)
		// newsyslog/logrotate: rename, the writer keeps its descriptor a
		// moment and writes a few more lines into the old file.
		os.Rename(path, fmt.Sprintf("%s.%d", path, round))
		w.write(3)
		w.reopen()
		w.write(100)
		c.waitLines(t, w.n-before) // rotations are hours apart, not microseconds
	}
	lines := c.waitLines(t, w.n-before)
	for i := range lines {
		n, _ := strconv.Atoi(strings.TrimPrefix(lines[i], "line "))
		lines[i] = "line " + strconv.Itoa(n-before)
	}
	checkSequence(t, lines, w.n-before)
}

func TestFollowCopyTruncate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	os.WriteFile(path, nil, 0o644)
	c := follow(t, &Follower{Path: path, Poll: 20 * time.Millisecond})
	time.Sleep(60 * time.Millisecond)
	w := newLogWriter(t, path)
	total := 0
	for round := 0; round < 5; round++ {
		w.write(50)
		total = w.n
		c.waitLines(t, total)
		// copytruncate: copy, truncate in place; the writer goes on at
		// the new end (O_APPEND).
		data, _ := os.ReadFile(path)
		os.WriteFile(fmt.Sprintf("%s.%d", path, round), data, 0o644)
		os.Truncate(path, 0)
		// Refill past the old size before the follower looks again.
		w.write(80)
	}
	lines := c.waitLines(t, w.n)
	checkSequence(t, lines, w.n)
}

func TestFollowFileAppearsLaterAndIsDeleted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "maillog")
	var msgs []string
	var mu sync.Mutex
	c := follow(t, &Follower{Path: path, Poll: 20 * time.Millisecond, Logf: func(f string, a ...any) {
		mu.Lock()
		msgs = append(msgs, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	time.Sleep(60 * time.Millisecond)
	w := newLogWriter(t, path) // created after the follower started: read from its start
	w.write(10)
	c.waitLines(t, 10)
	os.Remove(path)
	w.reopen()
	w.write(10)
	lines := c.waitLines(t, 20)
	checkSequence(t, lines, 20)
	mu.Lock()
	defer mu.Unlock()
	if len(msgs) == 0 || !strings.Contains(msgs[0], "does not exist (yet)") {
		t.Errorf("no message about the missing file: %q", msgs)
	}
	// The message is given once, not on every poll.
	if len(msgs) > 3 {
		t.Errorf("repeated messages: %q", msgs)
	}
}

func TestFollowPermissionError(t *testing.T) {
	if os.Getuid() == 0 {
		// Root reads any file: run this test again as nobody.
		dir, err := os.MkdirTemp("", "spfd-perm")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		os.Chmod(dir, 0o777)
		// The test binary's own directory is private: copy it out.
		self, err := os.ReadFile(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "logwatch.test")
		if err := os.WriteFile(bin, self, 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-test.run=^TestFollowPermissionError$", "-test.v")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "SPFD_PERM_DIR="+dir)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestFollowPermissionError") {
			t.Fatalf("as nobody: %v\n%s", err, out)
		}
		return
	}
	dir := os.Getenv("SPFD_PERM_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "secure")
	os.WriteFile(path, []byte("line 1\n"), 0o000)
	var got []string
	var mu sync.Mutex
	c := follow(t, &Follower{Path: path, FromStart: true, Poll: 20 * time.Millisecond, Logf: func(f string, a ...any) {
		mu.Lock()
		got = append(got, fmt.Sprintf(f, a...))
		mu.Unlock()
	}})
	time.Sleep(100 * time.Millisecond)
	os.Chmod(path, 0o644)
	checkSequence(t, c.waitLines(t, 1), 1)
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || !strings.Contains(got[0], "permission denied") {
		t.Errorf("messages %q", got)
	}
}

// A restart resumes at the saved position, also when rotation (and
// compression) happened while spfd was down.
func TestFollowResumeAcrossRotationWhileDown(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compressed=%v", compress), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "authlog")
			w := newLogWriter(t, path)
			w.write(10)
			c := follow(t, &Follower{Path: path, FromStart: true, Poll: 20 * time.Millisecond})
			c.waitLines(t, 10)
			w.write(5)
			c.waitLines(t, 15)
			c.close(t) // spfd stops
			first, pos := c.snapshot()
			w.write(7) // written while spfd is down, then rotated
			if compress {
				data, _ := os.ReadFile(path)
				gz, _ := os.Create(path + ".0.gz")
				zw := gzip.NewWriter(gz)
				zw.Write(data)
				zw.Close()
				gz.Close()
				os.Remove(path)
			} else {
				os.Rename(path, path+".0")
			}
			w.reopen()
			w.write(4)
			c2 := follow(t, &Follower{Path: path, Start: &pos, Poll: 20 * time.Millisecond})
			rest := c2.waitLines(t, 11)
			checkSequence(t, append(first, rest...), w.n)
		})
	}
}

func TestFollowResumeSameFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authlog")
	w := newLogWriter(t, path)
	w.write(10)
	c := follow(t, &Follower{Path: path, FromStart: true, Poll: 20 * time.Millisecond})
	c.waitLines(t, 10)
	c.close(t)
	first, pos := c.snapshot()
	w.write(10)
	c2 := follow(t, &Follower{Path: path, Start: &pos, Poll: 20 * time.Millisecond})
	checkSequence(t, append(first, c2.waitLines(t, 10)...), 20)
}

func TestFollowPartialAndLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	os.WriteFile(path, nil, 0o644)
	c := follow(t, &Follower{Path: path, Poll: 20 * time.Millisecond})
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	defer f.Close()
	time.Sleep(60 * time.Millisecond) // the follower is at the end of the empty file
	f.WriteString("line 1\nline")
	time.Sleep(100 * time.Millisecond)
	if lines, pos := c.snapshot(); len(lines) != 1 || pos.Offset != 7 {
		t.Fatalf("partial line delivered: %q at %d", lines, pos.Offset)
	}
	// A line over MaxLine is dropped whole, never cut short: cut at
	// MaxLine, this one would end in the attacker's fake clause.
	prefix := "Nov 27 03:14:02 mx1 sshd[1]: Invalid user "
	fake := " from 203.0.113.9 port 1"
	long := prefix + strings.Repeat("x", MaxLine-len(prefix)-len(fake)) + fake + " from 198.51.100.7 port 2"
	f.WriteString(" 2\n" + long[:MaxLine+5])
	time.Sleep(100 * time.Millisecond)
	if lines, pos := c.snapshot(); len(lines) != 2 || pos.Offset != 14 {
		t.Fatalf("inside a long line: %.60q at %d, want offset 14, the long line's start", lines, pos.Offset)
	}
	f.WriteString(long[MaxLine+5:] + "\n" + strings.Repeat("y", 3*MaxLine) + "\nline 3\n")
	c.waitLines(t, 3)
	time.Sleep(100 * time.Millisecond) // nothing more comes
	lines, pos := c.snapshot()
	if len(lines) != 3 || lines[1] != "line 2" || lines[2] != "line 3" {
		t.Fatalf("lines %d: %.60q", len(lines), lines)
	}
	if fi, _ := os.Stat(path); pos.Offset != fi.Size() {
		t.Fatalf("offset %d after the last line, file size %d", pos.Offset, fi.Size())
	}
}

// The rotator renames the file and creates a new one at once; the writer
// (syslogd) keeps appending to the old file for a second, 200 lines a
// second, before it reopens the name. No line is lost or read twice.
func TestFollowWriterReopensLate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "authlog")
	w := newLogWriter(t, path)
	c := follow(t, &Follower{Path: path, Poll: 50 * time.Millisecond, RotateGrace: 500 * time.Millisecond})
	time.Sleep(100 * time.Millisecond)
	paced := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); {
			w.write(1)
			time.Sleep(5 * time.Millisecond)
		}
	}
	for round := range 2 {
		paced(300 * time.Millisecond)
		os.Rename(path, fmt.Sprintf("%s.%d", path, round))
		if f, err := os.Create(path); err == nil { // newsyslog makes the new file
			f.Close()
		}
		paced(time.Second) // still into the old file
		w.reopen()
		paced(300 * time.Millisecond)
	}
	checkSequence(t, c.waitLines(t, w.n), w.n)
}

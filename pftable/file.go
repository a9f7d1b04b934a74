package pftable

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spfd/spfd/prefixset"
)

// FileTable is where the file backend writes one table, and what it runs
// after each change.
type FileTable struct {
	Path string
	// Command runs after the file changed, as an argument list (never
	// through a shell), e.g. pfctl -t spfd-white -T replace -f FILE.
	Command []string
}

// File writes each table atomically as a file of prefixes, one a line.
type File struct {
	Tables         map[string]FileTable
	CommandTimeout time.Duration

	mu      sync.Mutex
	stats   map[string]Stats
	written map[string][sha256.Size]byte // hash of what we last wrote
}

// NewFile returns a file backend for the given tables.
func NewFile(tables map[string]FileTable) *File {
	return &File{Tables: tables, CommandTimeout: 30 * time.Second, stats: make(map[string]Stats), written: make(map[string][sha256.Size]byte)}
}

// Kind implements Backend.
func (f *File) Kind() string { return "file" }

// Close implements Backend.
func (f *File) Close() error { return nil }

// Sync writes the table's file if its content differs, then runs the
// table's command. The new content streams to a temporary file while it is
// hashed, and the old file is hashed as it is read, so a million-line
// table costs no more than a buffer of memory. A file changed behind
// spfd's back is rewritten and counted as a drift repair.
func (f *File) Sync(ctx context.Context, table string, set *prefixset.Set) error {
	t, ok := f.Tables[table]
	if !ok {
		return fmt.Errorf("file backend: no table %q", table)
	}
	tmp, err := os.CreateTemp(filepath.Dir(t.Path), "."+filepath.Base(t.Path)+".tmp*")
	if err != nil {
		return fmt.Errorf("file backend: table %s: %w", table, err)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	newHash := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, newHash), 64<<10)
	entries := 0
	var buf []byte
	set.Each(func(p netip.Prefix) bool {
		buf = append(p.AppendTo(buf[:0]), '\n')
		bw.Write(buf)
		entries++
		return true
	})
	werr := bw.Flush()
	var sum [sha256.Size]byte
	copy(sum[:], newHash.Sum(nil))
	oldSum, oldErr := hashFile(t.Path)
	changed := oldErr != nil || oldSum != sum
	if !changed {
		tmp.Close()
	} else {
		serr := tmp.Sync()
		cerr := tmp.Close()
		if err := errors.Join(werr, serr, cerr, os.Chmod(tmp.Name(), 0o644), os.Rename(tmp.Name(), t.Path), SyncDir(filepath.Dir(t.Path))); err != nil {
			return fmt.Errorf("file backend: table %s: %w", table, err)
		}
		if len(t.Command) > 0 {
			if err := f.run(ctx, t.Command); err != nil {
				return fmt.Errorf("file backend: table %s: %w", table, err)
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats[table]
	if last, ok := f.written[table]; ok && oldErr == nil && last != oldSum {
		st.Repairs++ // the file was changed behind our back
	} else if ok && oldErr != nil {
		st.Repairs++ // or removed
	}
	f.written[table] = sum
	st.Entries = entries
	st.LastSync = time.Now()
	f.stats[table] = st
	return nil
}

func hashFile(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	fh, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

func (f *File) run(ctx context.Context, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, f.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// An empty pipe, not os/exec's default /dev/null: OpenBSD's unveil
	// refuses a plain open of /dev/null, which is not unveiled.
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("command %q: %w: %s", argv, err, bytes.TrimSpace(out))
	}
	return nil
}

// Stats implements Backend: the file backend counts no packets.
// Repairs implements RepairCounter.
func (f *File) Repairs(table string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats[table].Repairs
}

func (f *File) Stats(_ context.Context, table string) (Stats, error) {
	if _, ok := f.Tables[table]; !ok {
		return Stats{}, fmt.Errorf("file backend: no table %q", table)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats[table], nil
}

// ReadPrefixFile reads a file written by the file backend.
func ReadPrefixFile(path string) ([]netip.Prefix, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []netip.Prefix
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		p, err := netip.ParsePrefix(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it,
// renames it over path and syncs the directory, so a crash leaves either
// the old or the new content, never a mix.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package pftable

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
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
// table's command. A file changed behind spfd's back is rewritten: that is
// this backend's drift repair.
func (f *File) Sync(ctx context.Context, table string, prefixes []netip.Prefix) error {
	t, ok := f.Tables[table]
	if !ok {
		return fmt.Errorf("file backend: no table %q", table)
	}
	var buf bytes.Buffer
	buf.Grow(len(prefixes) * 20)
	for _, p := range prefixes {
		buf.WriteString(p.String())
		buf.WriteByte('\n')
	}
	old, err := os.ReadFile(t.Path)
	changed := err != nil || !bytes.Equal(old, buf.Bytes())
	if changed {
		if err := WriteFileAtomic(t.Path, buf.Bytes(), 0o644); err != nil {
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
	if last, ok := f.written[table]; ok && last != sha256.Sum256(old) {
		st.Repairs++ // the file was changed behind our back
	}
	f.written[table] = sha256.Sum256(buf.Bytes())
	st.Entries = len(prefixes)
	st.LastSync = time.Now()
	f.stats[table] = st
	return nil
}

func (f *File) run(ctx context.Context, argv []string) error {
	ctx, cancel := context.WithTimeout(ctx, f.CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("command %q: %w: %s", argv, err, bytes.TrimSpace(out))
	}
	return nil
}

// Stats implements Backend: the file backend counts no packets.
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

package pftable

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spfd/spfd/prefixset"
)

func TestFileBackend(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "white.txt")
	marker := filepath.Join(dir, "ran")
	// The command gets its arguments as a list: a ';' is just a character.
	f := NewFile(map[string]FileTable{path: {Path: path, Command: []string{"/usr/bin/touch", marker, filepath.Join(dir, "x; echo $HOME")}}})
	ps := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	var b prefixset.Builder
	for _, p := range ps {
		b.Add(p)
	}
	set := b.Set()
	if err := f.Sync(context.Background(), path, set); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPrefixFile(path)
	if err != nil || !slices.Equal(got, ps) {
		t.Fatalf("file holds %v, %v", got, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("command did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x; echo $HOME")); err != nil {
		t.Fatalf("argument with shell syntax not passed literally: %v", err)
	}
	// Unchanged content: no rewrite, no command.
	os.Remove(marker)
	if err := f.Sync(context.Background(), path, set); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("command ran although nothing changed")
	}
	// Someone edits the file: the next sync repairs it and counts it.
	os.WriteFile(path, []byte("10.0.0.0/8\n"), 0o644)
	if err := f.Sync(context.Background(), path, set); err != nil {
		t.Fatal(err)
	}
	got, _ = ReadPrefixFile(path)
	st, _ := f.Stats(context.Background(), path)
	if !slices.Equal(got, ps) || st.Repairs != 1 || st.Entries != 2 {
		t.Errorf("after drift: %v, stats %+v", got, st)
	}
	if _, err := f.Stats(context.Background(), "nope"); err == nil {
		t.Error("stats of an unknown table: no error")
	}
}

func TestFileBackendCommandFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "black.txt")
	f := NewFile(map[string]FileTable{path: {Path: path, Command: []string{"/bin/false"}}})
	err := f.Sync(context.Background(), path, &prefixset.Set{})
	if err == nil || !strings.Contains(err.Error(), "/bin/false") {
		t.Fatalf("failing command: %v", err)
	}
}

func TestWriteFileAtomicLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFileAtomic(path, []byte("a\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	fi, _ := os.Stat(path)
	if len(entries) != 1 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("dir %v, mode %v", entries, fi.Mode())
	}
}

// The command's standard input is an empty pipe, not /dev/null, which
// OpenBSD's unveil would refuse to open: test -p fails on /dev/null.
func TestFileBackendCommandStdinIsAPipe(t *testing.T) {
	test, err := exec.LookPath("test")
	if err != nil {
		t.Skip("no test(1)")
	}
	path := filepath.Join(t.TempDir(), "black.txt")
	f := NewFile(map[string]FileTable{path: {Path: path, Command: []string{test, "-p", "/dev/stdin"}}})
	if err := f.Sync(context.Background(), path, &prefixset.Set{}); err != nil {
		t.Fatalf("command's standard input is not a pipe: %v", err)
	}
}

package logwatch

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Position is where a follower stands: the file (device, inode and its
// first bytes, which survive compression where the inode does not) and
// the offset after the last whole line read.
type Position struct {
	Path   string `json:"path"`
	Dev    uint64 `json:"dev"`
	Ino    uint64 `json:"ino"`
	Offset int64  `json:"offset"`
	Head   string `json:"head"` // hex of up to headLen first bytes
	// Cursor is where a journal reader stands (Path is "journal:UNIT").
	Cursor string `json:"cursor,omitempty"`
}

// headLen is how much of a file's start identifies it.
const headLen = 64

// Batch is the lines read in one go and the position after them.
type Batch struct {
	Lines []string
	Pos   Position
}

// Follower follows one log file across rotation by rename (newsyslog,
// logrotate), copytruncate and compression, including rotation that
// happened while spfd was down. It reads by offset from its own file
// descriptor, so no line is lost or read twice: before it moves to a new
// file it drains the old one to its end.
type Follower struct {
	Path string
	// Start resumes from a saved position; nil starts at the end of the
	// file, as tail -f does, or at its beginning with FromStart.
	Start     *Position
	FromStart bool
	// Poll is the fallback interval; change notification (inotify,
	// kqueue) wakes the follower sooner.
	Poll time.Duration
	// Logf reports problems (a missing file, a permission error) once
	// each, not on every retry.
	Logf func(format string, args ...any)

	f       *os.File
	dev     uint64
	ino     uint64
	off     int64
	head    []byte
	lines   lineSplitter
	lastErr string
	notify  notifier
	// retired is the file the name pointed to before the last rotation,
	// still read until it has been quiet for RotateGrace: the writer
	// (syslogd, a web server) appends to it until it reopens the name.
	retired *retiredFile
	// RotateGrace is how long a rotated file must stay unchanged before
	// it is let go; 0 means DefaultRotateGrace.
	RotateGrace time.Duration
}

// DefaultRotateGrace outlasts the reopen delay of syslogd and web servers
// after newsyslog or logrotate signals them.
const DefaultRotateGrace = 5 * time.Second

type retiredFile struct {
	f       *os.File
	off     int64
	lines   lineSplitter
	changed time.Time // when it last grew
}

// maxLineBytes bounds a line; a longer line is dropped whole.
const maxLineBytes = MaxLine

// Run follows the file until ctx ends, sending batches to out.
func (f *Follower) Run(ctx context.Context, out chan<- Batch) error {
	if f.Poll <= 0 {
		f.Poll = time.Second
	}
	f.notify = newNotifier(f.Path)
	defer f.notify.close()
	defer f.closeFile()
	defer f.closeRetired()
	tick := time.NewTicker(f.Poll)
	defer tick.Stop()
	first := true
	for {
		if f.f == nil {
			// Only a file there at the start is read from its end; one
			// that appears later is read whole.
			f.open(ctx, out, first)
			first = false
		}
		if f.f != nil {
			if err := f.step(ctx, out); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.notify.events():
		case <-tick.C:
		}
	}
}

func (f *Follower) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if msg == f.lastErr {
		return
	}
	f.lastErr = msg
	if f.Logf != nil {
		f.Logf("%s", msg)
	}
}

func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

// open opens the file and decides where to read from.
func (f *Follower) open(ctx context.Context, out chan<- Batch, first bool) {
	fh, err := os.Open(f.Path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			f.logf("%s does not exist (yet); waiting for it", f.Path)
		} else {
			f.logf("cannot open %s: %v; retrying", f.Path, err)
		}
		if first && f.Start != nil && errors.Is(err, fs.ErrNotExist) {
			// Rotated away while spfd was down and not recreated yet.
			f.readRotated(ctx, out, *f.Start)
			f.Start = nil
		}
		return
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		f.logf("cannot stat %s: %v; retrying", f.Path, err)
		return
	}
	f.lastErr = ""
	f.adopt(fh)
	switch {
	case f.Start != nil:
		st := *f.Start
		f.Start = nil
		if st.Dev == f.dev && st.Ino == f.ino && headMatches(f.head, st.Head) && fi.Size() >= st.Offset {
			f.off = st.Offset
			return
		}
		// The file changed while spfd was down: finish the old one
		// where rotation put it, then read the new one from its start.
		f.readRotated(ctx, out, st)
	case first && !f.FromStart:
		f.off = fi.Size()
	}
}

func readHead(fh *os.File) []byte {
	b := make([]byte, headLen)
	n, _ := fh.ReadAt(b, 0)
	return b[:n]
}

// headMatches compares a file's head with a saved one; a file that was
// shorter when saved is compared over the saved length.
func headMatches(head []byte, saved string) bool {
	s, err := hex.DecodeString(saved)
	if err != nil || len(head) < len(s) {
		return false
	}
	return bytes.Equal(head[:len(s)], s)
}

// step reads what is new and handles rotation and truncation.
func (f *Follower) step(ctx context.Context, out chan<- Batch) error {
	// Truncation first, so nothing is read from a stale offset in a file
	// that was truncated (copytruncate) and refilled meanwhile.
	if cur, err := f.f.Stat(); err == nil && (cur.Size() < f.off || !bytes.HasPrefix(readHead(f.f), f.head)) {
		f.off = 0
		f.lines.reset()
		f.head = readHead(f.f)
	}
	if err := f.drain(ctx, out); err != nil {
		return err
	}
	if err := f.drainRetired(ctx, out); err != nil {
		return err
	}
	if len(f.head) < headLen {
		f.head = readHead(f.f)
	}
	fi, err := os.Stat(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // renamed or removed: keep draining until a new file comes
	case err != nil:
		f.logf("cannot stat %s: %v", f.Path, err)
		return nil
	}
	if dev, ino := fileID(fi); dev == f.dev && ino == f.ino {
		return nil
	}
	// A new file took the name. Hold it open, finish what the old one
	// has, and keep reading the old one until it is quiet: its writer
	// appends there until it reopens the name.
	nf, err := os.Open(f.Path)
	if err != nil {
		return nil // gone again; the next wake looks anew
	}
	if err := f.drain(ctx, out); err != nil {
		nf.Close()
		return err
	}
	f.closeRetired()
	f.retired = &retiredFile{f: f.f, off: f.off, lines: f.lines, changed: time.Now()}
	f.f, f.lines = nil, lineSplitter{}
	f.adopt(nf)
	return f.drain(ctx, out)
}

// drainRetired reads what the rotated file gained, and lets it go once it
// has been quiet for the grace period. Its lines go out with the current
// file's position: the saved position never points into a rotated file.
func (f *Follower) drainRetired(ctx context.Context, out chan<- Batch) error {
	r := f.retired
	if r == nil {
		return nil
	}
	grew, err := f.readOn(ctx, out, r.f, &r.off, &r.lines)
	if err != nil {
		return err
	}
	if grew {
		r.changed = time.Now()
	}
	grace := f.RotateGrace
	if grace <= 0 {
		grace = DefaultRotateGrace
	}
	if time.Since(r.changed) >= grace {
		if last, ok := r.lines.flush(); ok && !f.emit(ctx, out, []string{last}) {
			return ctx.Err()
		}
		f.closeRetired()
	}
	return nil
}

func (f *Follower) closeRetired() {
	if f.retired != nil {
		f.retired.f.Close()
		f.retired = nil
	}
}

// adopt makes fh the followed file, read from its start.
func (f *Follower) adopt(fh *os.File) {
	f.f = fh
	if fi, err := fh.Stat(); err == nil {
		f.dev, f.ino = fileID(fi)
	}
	f.head = readHead(fh)
	f.lines.reset()
	f.off = 0
	f.notify.watch(fh)
}

// drain reads from the offset to the end of the open file.
func (f *Follower) drain(ctx context.Context, out chan<- Batch) error {
	_, err := f.readOn(ctx, out, f.f, &f.off, &f.lines)
	return err
}

// readOn reads fh from *off to its end, cutting lines with lines, and
// sends them with the current file's position; grew says whether it read
// anything.
func (f *Follower) readOn(ctx context.Context, out chan<- Batch, fh *os.File, off *int64, lines *lineSplitter) (grew bool, err error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := fh.ReadAt(buf, *off)
		if n > 0 {
			grew = true
			*off += int64(n)
			if ls := lines.split(buf[:n]); len(ls) > 0 && !f.emit(ctx, out, ls) {
				return grew, ctx.Err()
			}
		}
		if err != nil || n == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				f.logf("reading %s: %v", fh.Name(), err)
			}
			return grew, nil
		}
	}
}

// lineSplitter cuts whole lines out of what is read, keeping a trailing
// partial line for the next read. A line longer than maxLineBytes is
// dropped whole: cut short, it could end where an attacker's text says
// "from IP port N", and the parsers take the client from the end.
type lineSplitter struct {
	max     int // the longest line kept; maxLineBytes if zero
	partial []byte
	pending int64 // bytes of the partial line, kept or not
}

func (l *lineSplitter) limit() int64 {
	if l.max > 0 {
		return int64(l.max)
	}
	return maxLineBytes
}

func (l *lineSplitter) split(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			l.add(data)
			break
		}
		if l.pending == 0 { // the common case: a whole line in data
			if int64(i) <= l.limit() {
				lines = append(lines, string(bytes.TrimSuffix(data[:i], []byte("\r"))))
			}
		} else {
			l.add(data[:i])
			if l.pending <= l.limit() {
				lines = append(lines, string(bytes.TrimSuffix(l.partial, []byte("\r"))))
			}
			l.reset()
		}
		data = data[i+1:]
	}
	return lines
}

func (l *lineSplitter) add(b []byte) {
	l.pending += int64(len(b))
	if l.pending <= l.limit() {
		l.partial = append(l.partial, b...)
	}
}

// flush returns the partial line as a last line (a file that ends
// without a newline), unless it was too long.
func (l *lineSplitter) flush() (string, bool) {
	defer l.reset()
	if l.pending == 0 || l.pending > l.limit() {
		return "", false
	}
	return string(l.partial), true
}

func (l *lineSplitter) reset() { l.partial, l.pending = l.partial[:0], 0 }

func (f *Follower) emit(ctx context.Context, out chan<- Batch, lines []string) bool {
	select {
	case out <- Batch{Lines: lines, Pos: f.Position()}:
		return true
	case <-ctx.Done():
		return false
	}
}

// Position returns where the follower stands: after the last whole line.
func (f *Follower) Position() Position {
	return Position{Path: f.Path, Dev: f.dev, Ino: f.ino, Offset: f.off - f.lines.pending, Head: hex.EncodeToString(f.head)}
}

func (f *Follower) closeFile() {
	if f.f != nil {
		f.f.Close()
		f.f = nil
	}
}

// readRotated finds the file a saved position points into among the
// rotated names (path.0, path.1, path-DATE, compressed or not) and sends
// what it holds after the saved offset.
func (f *Follower) readRotated(ctx context.Context, out chan<- Batch, st Position) {
	cands := []string{f.Path + ".0", f.Path + ".1", f.Path + ".0.gz", f.Path + ".1.gz"}
	if dated, err := filepath.Glob(f.Path + "-*"); err == nil {
		sort.Sort(sort.Reverse(sort.StringSlice(dated)))
		cands = append(cands, dated...)
	}
	for _, c := range cands {
		fh, err := os.Open(c)
		if err != nil {
			continue
		}
		var r io.Reader = fh
		fi, _ := fh.Stat()
		if filepath.Ext(c) == ".gz" {
			zr, err := gzip.NewReader(fh)
			if err != nil {
				fh.Close()
				continue
			}
			r = zr
		} else if dev, ino := fileID(fi); dev != st.Dev || ino != st.Ino {
			fh.Close()
			continue
		}
		head := make([]byte, headLen)
		n, _ := io.ReadFull(r, head)
		if !headMatches(head[:n], st.Head) || n < len(st.Head)/2 {
			fh.Close()
			continue
		}
		// Skip what was read before, then send the rest.
		rest := io.MultiReader(bytes.NewReader(head[:n]), r)
		if _, err := io.CopyN(io.Discard, rest, st.Offset); err != nil {
			fh.Close()
			continue
		}
		data, err := io.ReadAll(io.LimitReader(rest, 256<<20))
		fh.Close()
		if err != nil {
			f.logf("reading rotated %s: %v", c, err)
		}
		var rotated lineSplitter
		lines := rotated.split(data)
		if last, ok := rotated.flush(); ok {
			lines = append(lines, last)
		}
		if len(lines) > 0 {
			f.emit(ctx, out, lines)
		}
		f.logf("%s was rotated while spfd was down: read %d lines left in %s", f.Path, len(lines), c)
		return
	}
	f.logf("%s was rotated while spfd was down and the old file was not found: lines after offset %d may be lost", f.Path, st.Offset)
}

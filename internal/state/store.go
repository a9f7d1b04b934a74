package state

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spfd/spfd/pftable"
)

// Op is one journalled change. Replaying an op twice has the same effect
// as once, so a journal may overlap the snapshot it follows.
type Op struct {
	Op      string       `json:"op"` // add, remove, delete, domain-add, domain-delete, capture-block
	List    string       `json:"list,omitempty"`
	Prefix  netip.Prefix `json:"prefix,omitzero"`
	Source  string       `json:"source,omitempty"`
	Expires time.Time    `json:"expires,omitzero"`
	Domain  string       `json:"domain,omitempty"`
	// Note and At record where and when a capture came from.
	Note string    `json:"note,omitempty"`
	At   time.Time `json:"at,omitzero"`
	// Position is a log read position (op "position"), journalled with
	// the bans its lines caused so a replay never counts them again.
	Position json.RawMessage `json:"position,omitempty"`
	// Offence, on an add from a log, is how many times the address has
	// now been listed (at At): the repeat-offender memory.
	Offence int `json:"offence,omitempty"`
}

// Store keeps the state directory: the snapshot "state", the one before it
// "state.prev", and journals "journal.<generation>" of the changes made
// since. Every acknowledged change is in a journal, fsynced, before the
// reply; snapshots bound the journals' length.
type Store struct {
	dir      string
	openFile func(path string) (JournalFile, error)

	// wmu is held while a batch is written, synced and applied, and while
	// the journal rotates: a snapshot after Rotate holds every op of the
	// journals before it. Lock order: wmu, then whatever apply takes.
	wmu     sync.Mutex
	gen     uint64 // the current journal's generation
	journal JournalFile
	size    int64 // the journal's length: a failed write is cut back to it
	lines   atomic.Int64

	// qmu guards the queue of ops waiting for the next group commit.
	qmu      sync.Mutex
	queue    []*request
	flushing bool

	mu sync.Mutex
	// committed is the generation of the snapshot in "state": after the
	// next commit it is state.prev's, whose journals must stay.
	committed uint64
	// lastErr is the last failure to write the journal or a snapshot,
	// for show status; cleared by the next success.
	lastErr error
}

// JournalFile is what the store needs of an open journal: an *os.File,
// or in tests one that fails as a full disk does.
type JournalFile interface {
	Write([]byte) (int, error)
	Sync() error
	Truncate(int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

// OpenJournalFile opens a journal for appending: the default of
// Options.OpenJournal.
func OpenJournalFile(path string) (JournalFile, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// Options adjust a store; the zero value is the real thing.
type Options struct {
	// OpenJournal opens a journal for appending (tests put a failing
	// disk behind it).
	OpenJournal func(path string) (JournalFile, error)
}

// request is one caller's ops in the group-commit queue.
type request struct {
	ops  []Op
	done chan error
}

const (
	stateFile     = "state"
	prevStateFile = "state.prev"
	journalPrefix = "journal."
	// maxJournalLine bounds one journal line when replaying.
	maxJournalLine = 64 << 10
)

// OpenStore loads the state directory, creating it if needed. It returns
// the newest readable snapshot, the journalled ops to replay on top of it,
// and warnings about anything damaged it had to skip. It never fails on
// damaged files: spfd must start, not crash-loop.
func OpenStore(dir string, now func() time.Time, opts ...Options) (*Store, *Snapshot, []Op, []string, error) {
	open := OpenJournalFile
	for _, o := range opts {
		if o.OpenJournal != nil {
			open = o.OpenJournal
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("state directory: %w", err)
	}
	var warnings []string
	var snap *Snapshot
	for _, name := range []string{stateFile, prevStateFile} {
		s, err := readSnapshotFile(filepath.Join(dir, name), now)
		if err == nil {
			snap = s
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			warnings = append(warnings, fmt.Sprintf("%s: %v; trying the previous copy", filepath.Join(dir, name), err))
		}
	}
	if snap == nil {
		snap = &Snapshot{Lists: NewLists(now)}
		if len(warnings) > 0 {
			warnings = append(warnings, "no readable state: starting empty")
		}
	}
	gens, err := journalGenerations(dir)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var ops []Op
	last := snap.Generation
	for _, g := range gens {
		if g < snap.Generation {
			continue
		}
		jops, warn := readJournal(filepath.Join(dir, journalPrefix+strconv.FormatUint(g, 10)))
		ops = append(ops, jops...)
		if warn != "" {
			warnings = append(warnings, warn)
		}
		last = max(last, g)
	}
	st := &Store{dir: dir, openFile: open, gen: last + 1, committed: snap.Generation}
	if err := st.openJournal(); err != nil {
		return nil, nil, nil, nil, err
	}
	return st, snap, ops, warnings, nil
}

func readSnapshotFile(path string, now func() time.Time) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadSnapshot(f, now)
}

func journalGenerations(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var gens []uint64
	for _, e := range entries {
		if g, ok := strings.CutPrefix(e.Name(), journalPrefix); ok {
			if n, err := strconv.ParseUint(g, 10, 64); err == nil {
				gens = append(gens, n)
			}
		}
	}
	sort.Slice(gens, func(i, j int) bool { return gens[i] < gens[j] })
	return gens, nil
}

// readJournal reads the ops of a journal. A torn last line (a crash
// mid-write, never acknowledged) is dropped silently. A damaged line is
// skipped with a warning and the intact records after it are kept; a line
// where a failed append was glued to the next one gives back the record
// it ends with.
func readJournal(path string) ([]Op, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", path, err)
	}
	var ops []Op
	var damaged []string
	for n := 1; len(data) > 0; n++ {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		data = rest
		if !complete {
			break // torn tail
		}
		if len(line) == 0 {
			continue
		}
		if op, ok := parseOp(line); ok {
			ops = append(ops, op)
			continue
		}
		// A record glued after a torn one starts at the last `{"op":`.
		if k := bytes.LastIndex(line, []byte(`{"op":`)); k > 0 {
			if op, ok := parseOp(line[k:]); ok {
				ops = append(ops, op)
				damaged = append(damaged, fmt.Sprintf("%d (the record after the damage kept)", n))
				continue
			}
		}
		damaged = append(damaged, strconv.Itoa(n))
	}
	if len(damaged) > 0 {
		return ops, fmt.Sprintf("%s: damaged journal lines skipped: %s", path, strings.Join(damaged, ", "))
	}
	return ops, ""
}

func parseOp(line []byte) (Op, bool) {
	if len(line) > maxJournalLine {
		return Op{}, false
	}
	var op Op
	err := json.Unmarshal(line, &op)
	return op, err == nil && op.Op != ""
}

func (s *Store) openJournal() error {
	path := filepath.Join(s.dir, journalPrefix+strconv.FormatUint(s.gen, 10))
	f, err := s.openFile(path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := pftable.SyncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	s.journal = f
	s.size = fi.Size()
	s.lines.Store(0)
	return nil
}

// Append writes ops to the journal and syncs it: when Append returns nil,
// the change survives kill -9 and power loss. It applies nothing.
func (s *Store) Append(ops ...Op) error { return s.Commit(ops, nil) }

// Commit journals ops and then calls apply with them, in journal order,
// before it returns nil: a change is acknowledged only once it is on disk,
// and it is applied in the order the journal replays it. Concurrent
// callers share one write and one fsync (group commit), which happen
// outside any lock a reader of the state takes; apply runs under the
// store's write lock, so it must not call into the store. On failure the
// journal is cut back to where it was, nothing is applied, and every
// caller of the batch gets the error.
func (s *Store) Commit(ops []Op, apply func([]Op)) error {
	if len(ops) == 0 {
		return nil
	}
	req := &request{ops: ops, done: make(chan error, 1)}
	s.qmu.Lock()
	s.queue = append(s.queue, req)
	lead := !s.flushing
	s.flushing = true
	s.qmu.Unlock()
	if lead {
		s.flush(apply)
	}
	return <-req.done
}

// flush writes batches until the queue is empty. Only one caller flushes
// at a time; the others wait for their request's answer.
func (s *Store) flush(apply func([]Op)) {
	for {
		s.qmu.Lock()
		batch := s.queue
		s.queue = nil
		if len(batch) == 0 {
			s.flushing = false
			s.qmu.Unlock()
			return
		}
		s.qmu.Unlock()
		var all []Op
		for _, r := range batch {
			all = append(all, r.ops...)
		}
		err := s.write(all, apply)
		for _, r := range batch {
			r.done <- err
		}
	}
}

func (s *Store) write(ops []Op, apply func([]Op)) error {
	var buf bytes.Buffer
	for _, op := range ops {
		b, err := json.Marshal(op)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.journal == nil {
		return errors.New("journal closed")
	}
	n, err := s.journal.Write(buf.Bytes())
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		// Leave the journal as it was: a half line would glue the next
		// append onto it (ENOSPC). If even that fails, go on in a new
		// journal file, so no later record follows the damage.
		if n > 0 {
			if terr := s.journal.Truncate(s.size); terr != nil || s.journal.Sync() != nil {
				s.journal.Close()
				s.journal = nil
				s.gen++
				if oerr := s.openJournal(); oerr != nil {
					err = errors.Join(err, oerr)
				}
			}
		}
		err = fmt.Errorf("journal: %w", err)
		s.setErr(err)
		return err
	}
	s.size += int64(n)
	s.lines.Add(int64(len(ops)))
	s.setErr(nil)
	if apply != nil {
		apply(ops)
	}
	return nil
}

func (s *Store) setErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// Err reports the last failure to write the journal or a snapshot, nil
// once writing works again.
func (s *Store) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// JournalLines reports the ops in the current journal.
func (s *Store) JournalLines() int { return int(s.lines.Load()) }

// Rotate starts a new journal and returns its generation: the snapshot
// taken now (under the same lock as the state) must carry it, so ops
// after the snapshot are replayed and ops before it are not needed.
func (s *Store) Rotate() (uint64, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.journal != nil {
		s.journal.Close()
	}
	s.gen++
	if err := s.openJournal(); err != nil {
		return 0, err
	}
	return s.gen, nil
}

// WriteFile replaces the state directory's file name with data, synced.
func (s *Store) WriteFile(name string, data []byte) error {
	path := filepath.Join(s.dir, name)
	if err := writeSynced(path+".new", writeBytes(data)); err != nil {
		return err
	}
	if err := os.Rename(path+".new", path); err != nil {
		return err
	}
	return pftable.SyncDir(s.dir)
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// writeBytes is a writer of data for writeSynced.
func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// CommitSnapshot writes the snapshot of generation gen that write
// serialises, straight to the file (a million entries need no 30 MB
// buffer): the current state becomes state.prev, and journals older
// than state.prev's are removed.
func (s *Store) CommitSnapshot(write func(io.Writer) error, gen uint64) error {
	if err := s.commitSnapshot(write, gen); err != nil {
		s.setErr(err)
		return err
	}
	s.setErr(nil)
	return nil
}

func (s *Store) commitSnapshot(write func(io.Writer) error, gen uint64) error {
	path := filepath.Join(s.dir, stateFile)
	tmp := path + ".new"
	if err := writeSynced(tmp, write); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if _, err := os.Stat(path); err == nil {
		if err := os.Rename(path, filepath.Join(s.dir, prevStateFile)); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := pftable.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	gens, err := journalGenerations(s.dir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	keep := s.committed // now state.prev's generation
	s.committed = gen
	s.mu.Unlock()
	for _, g := range gens {
		if g < keep {
			os.Remove(filepath.Join(s.dir, journalPrefix+strconv.FormatUint(g, 10)))
		}
	}
	return nil
}

func writeSynced(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	werr := write(bw)
	if werr == nil {
		werr = bw.Flush()
	}
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// Close closes the journal.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
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
}

// Store keeps the state directory: the snapshot "state", the one before it
// "state.prev", and journals "journal.<generation>" of the changes made
// since. Every acknowledged change is in a journal, fsynced, before the
// reply; snapshots bound the journals' length.
type Store struct {
	dir string

	mu      sync.Mutex
	gen     uint64 // the current journal's generation
	journal *os.File
	lines   int
	// committed is the generation of the snapshot in "state": after the
	// next commit it is state.prev's, whose journals must stay.
	committed uint64
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
func OpenStore(dir string, now func() time.Time) (*Store, *Snapshot, []Op, []string, error) {
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
	st := &Store{dir: dir, gen: last + 1, committed: snap.Generation}
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

// readJournal reads ops up to the first damaged line. A torn last line
// (a crash mid-write, never acknowledged) is dropped silently.
func readJournal(path string) ([]Op, string) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Sprintf("%s: %v", path, err)
	}
	var ops []Op
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxJournalLine)
	complete := bytes.HasSuffix(data, []byte("\n"))
	n := 0
	for sc.Scan() {
		n++
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			if !complete && !sc.Scan() {
				return ops, "" // torn tail
			}
			return ops, fmt.Sprintf("%s:%d: damaged journal line, later lines skipped", path, n)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return ops, fmt.Sprintf("%s: %v", path, err)
	}
	return ops, ""
}

func (s *Store) openJournal() error {
	path := filepath.Join(s.dir, journalPrefix+strconv.FormatUint(s.gen, 10))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := pftable.SyncDir(s.dir); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	s.journal = f
	s.lines = 0
	return nil
}

// Append writes ops to the journal and syncs it: when Append returns nil,
// the change survives kill -9 and power loss.
func (s *Store) Append(ops ...Op) error {
	var buf bytes.Buffer
	for _, op := range ops {
		b, err := json.Marshal(op)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return errors.New("journal closed")
	}
	if _, err := s.journal.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := s.journal.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	s.lines += len(ops)
	return nil
}

// JournalLines reports the ops in the current journal.
func (s *Store) JournalLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lines
}

// Rotate starts a new journal and returns its generation: the snapshot
// taken now (under the same lock as the state) must carry it, so ops
// after the snapshot are replayed and ops before it are not needed.
func (s *Store) Rotate() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal != nil {
		s.journal.Close()
	}
	s.gen++
	if err := s.openJournal(); err != nil {
		return 0, err
	}
	return s.gen, nil
}

// Commit writes a serialised snapshot of generation gen: the current
// state becomes state.prev, and journals older than state.prev's are
// removed.
func (s *Store) Commit(data []byte, gen uint64) error {
	path := filepath.Join(s.dir, stateFile)
	tmp := path + ".new"
	if err := writeSynced(tmp, data); err != nil {
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

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	return errors.Join(werr, serr, cerr)
}

// Close closes the journal.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.journal == nil {
		return nil
	}
	err := s.journal.Close()
	s.journal = nil
	return err
}

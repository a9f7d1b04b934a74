package state

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"go4.org/netipx"
)

// The snapshot is a text file, one record a line, so an admin can read it:
//
//	spfd-state 1 <journal generation>
//	S <id> <source name>
//	W|B <prefix> <source id>[@<expires unix>] ...
//	D <domain state as JSON>
//	P <log position as JSON>
//	END <records> <crc32 of everything before this line>
//
// The END line proves the file is whole.
const snapshotMagic = "spfd-state 1"

// maxSnapshotLine bounds one line when reading a snapshot back.
const maxSnapshotLine = 1 << 20

// Snapshot is everything spfd persists.
type Snapshot struct {
	Generation uint64 // the journal generation that follows this snapshot
	Lists      *Lists
	Domains    []DomainState
	Positions  []json.RawMessage // log read positions, owned by logwatch
}

// DomainState is what spfd knows of one SPF domain.
type DomainState struct {
	Name string `json:"name"`
	// Origins say why the domain is walked: "config", "file:<path>",
	// "runtime" (spfctl domain add), "capture" (outbound mail).
	Origins  []string       `json:"origins"`
	Status   string         `json:"status,omitempty"`
	Prefixes []netip.Prefix `json:"prefixes,omitempty"` // the last good set
	Errors   []string       `json:"errors,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	TTL      time.Duration  `json:"ttl,omitempty"`
	LastWalk time.Time      `json:"last_walk,omitzero"`
	LastGood time.Time      `json:"last_good,omitzero"`
	NextWalk time.Time      `json:"next_walk,omitzero"`
	Failures int            `json:"failures,omitempty"`
	// LostSince is when the domain's SPF record was first found missing;
	// its networks go after the grace period.
	LostSince time.Time `json:"lost_since,omitzero"`
	// LastSeen is when outbound mail last went to a captured domain.
	LastSeen time.Time `json:"last_seen,omitzero"`
	// CapturedFrom and CapturedAt say which log line first captured the
	// domain, and when.
	CapturedFrom string    `json:"captured_from,omitempty"`
	CapturedAt   time.Time `json:"captured_at,omitzero"`
	// NoCapture: an admin deleted the captured domain; mail to it never
	// captures it again. Such a state has no origins and is not walked.
	NoCapture bool `json:"no_capture,omitempty"`
}

// WriteSnapshot writes s to w.
func WriteSnapshot(w io.Writer, s *Snapshot) error {
	crc := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<16)
	records := 0
	fmt.Fprintf(bw, "%s %d\n", snapshotMagic, s.Generation)
	l := s.Lists
	used := make(map[sourceID]bool)
	for _, t := range l.tables {
		t.each(func(p netip.Prefix, h hold) { used[h.src] = true })
		for _, ex := range t.extra {
			for _, x := range ex {
				used[x.src] = true
			}
		}
	}
	for id, name := range l.names {
		if used[sourceID(id)] {
			fmt.Fprintf(bw, "S %d %s\n", id, name)
			records++
		}
	}
	var line []byte
	for li, t := range l.tables {
		tag := byte('W')
		if List(li) == Black {
			tag = 'B'
		}
		t.each(func(p netip.Prefix, h hold) {
			line = append(line[:0], tag, ' ')
			line = p.AppendTo(line)
			line = appendHold(line, h)
			for _, x := range t.extra[p] {
				line = appendHold(line, x)
			}
			line = append(line, '\n')
			bw.Write(line)
			records++
		})
	}
	for _, d := range s.Domains {
		b, err := json.Marshal(d)
		if err != nil {
			return err
		}
		bw.WriteString("D ")
		bw.Write(b)
		bw.WriteByte('\n')
		records++
	}
	for _, p := range s.Positions {
		bw.WriteString("P ")
		bw.Write(p)
		bw.WriteByte('\n')
		records++
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "END %d %08x\n", records, crc.Sum32())
	return err
}

func appendHold(b []byte, h hold) []byte {
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(h.src), 10)
	if h.expires != 0 {
		b = append(b, '@')
		b = strconv.AppendInt(b, int64(h.expires)+holdEpoch, 10)
	}
	return b
}

// ReadSnapshot reads a snapshot written by WriteSnapshot. Any damage (a
// bad line, a missing or wrong END) is an error: the caller falls back to
// the previous snapshot.
func ReadSnapshot(r io.Reader, now func() time.Time) (*Snapshot, error) {
	s := &Snapshot{Lists: NewLists(now)}
	l := s.Lists
	crc := crc32.NewIEEE()
	br := bufio.NewReaderSize(r, maxSnapshotLine)
	ids := make(map[uint64]sourceID) // file id -> our id
	records := 0
	lineNo := 0
	ended := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", lineNo+1, br.Size())
		}
		if err == io.EOF {
			if len(line) > 0 {
				return nil, fmt.Errorf("line %d: truncated", lineNo+1)
			}
			break
		}
		if err != nil {
			return nil, err
		}
		lineNo++
		text := string(line[:len(line)-1])
		if ended {
			return nil, fmt.Errorf("line %d: data after END", lineNo)
		}
		if lineNo == 1 {
			gen, ok := strings.CutPrefix(text, snapshotMagic+" ")
			if !ok {
				return nil, errors.New("not an spfd state file")
			}
			if s.Generation, err = strconv.ParseUint(gen, 10, 64); err != nil {
				return nil, fmt.Errorf("line 1: bad generation %q", gen)
			}
			crc.Write(line)
			continue
		}
		if rest, ok := strings.CutPrefix(text, "END "); ok {
			var n int
			var sum uint32
			if _, err := fmt.Sscanf(rest, "%d %08x", &n, &sum); err != nil {
				return nil, fmt.Errorf("line %d: bad END line", lineNo)
			}
			if n != records || sum != crc.Sum32() {
				return nil, fmt.Errorf("damaged: END says %d records, crc %08x; read %d, crc %08x", n, sum, records, crc.Sum32())
			}
			ended = true
			continue
		}
		crc.Write(line)
		records++
		if err := s.readRecord(text, ids); err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
	}
	if !ended {
		return nil, errors.New("truncated: no END line")
	}
	for li := range l.members {
		for id, m := range l.members[li] {
			slices.SortFunc(m, netipx.ComparePrefix)
			l.members[li][id] = m
		}
	}
	return s, nil
}

func (s *Snapshot) readRecord(text string, ids map[uint64]sourceID) error {
	l := s.Lists
	if len(text) < 2 || text[1] != ' ' {
		return errors.New("malformed record")
	}
	rest := text[2:]
	switch text[0] {
	case 'S':
		idText, name, ok := strings.Cut(rest, " ")
		id, err := strconv.ParseUint(idText, 10, 32)
		if !ok || err != nil || name == "" {
			return errors.New("malformed source")
		}
		ids[id] = l.id(name)
	case 'W', 'B':
		list := White
		if text[0] == 'B' {
			list = Black
		}
		prefixText, holds, ok := strings.Cut(rest, " ")
		if !ok || holds == "" {
			return errors.New("entry without a source")
		}
		p, err := netip.ParsePrefix(prefixText)
		if err != nil || p.Masked() != p {
			return fmt.Errorf("bad prefix %q", prefixText)
		}
		t := l.tables[list]
		if _, dup := t.get(p); dup {
			return fmt.Errorf("duplicate entry %s", p)
		}
		for holds != "" {
			var f string
			f, holds, _ = strings.Cut(holds, " ")
			idText, expText, hasExp := strings.Cut(f, "@")
			fid, err := strconv.ParseUint(idText, 10, 32)
			id, known := ids[fid]
			if err != nil || !known {
				return fmt.Errorf("unknown source %q", idText)
			}
			var exp uint32
			if hasExp {
				unix, err := strconv.ParseInt(expText, 10, 64)
				if err != nil || unix <= holdEpoch || unix-holdEpoch >= 1<<32 {
					return fmt.Errorf("bad expiry %q", expText)
				}
				exp = uint32(unix - holdEpoch)
			}
			if !t.set(p, hold{src: id, expires: exp}) && len(t.extra[p]) == 0 {
				return fmt.Errorf("source %q twice on %s", idText, p)
			}
			if isSetSource(l.names[id]) {
				l.members[list][id] = append(l.members[list][id], p)
			}
		}
	case 'D':
		var d DomainState
		if err := json.Unmarshal([]byte(rest), &d); err != nil {
			return fmt.Errorf("domain: %w", err)
		}
		s.Domains = append(s.Domains, d)
	case 'P':
		if !json.Valid([]byte(rest)) {
			return errors.New("bad log position")
		}
		s.Positions = append(s.Positions, json.RawMessage(rest))
	default:
		return fmt.Errorf("unknown record type %q", text[0])
	}
	return nil
}

// isSetSource reports whether a source is set as a whole (and diffed on
// update) rather than entry by entry.
func isSetSource(name string) bool {
	return name == SourceStatic || strings.HasPrefix(name, PrefixSPF) || strings.HasPrefix(name, PrefixFeed)
}

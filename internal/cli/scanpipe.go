package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/spfd/spfd/logwatch"
)

// The scan pipeline: a reader cuts the input into chunks of whole lines;
// workers parse chunks on every core; shards apply the rules to their
// addresses' events in line order; a writer merges the shards' reports by
// line number.

// shardOf picks the shard that owns an event: by the address the rules
// charge it to.
func (s *scanner) shardOf(fam int, ev *logwatch.Event) int {
	if len(s.shards) == 1 || fams[fam].Joins {
		return 0
	}
	a := ev.Addr
	if ev.Forwarded != "" { // without it, Client is the logged address or none
		if client, ok := s.shards[0].procs[fam].Client(ev); ok {
			a = client // behind a trusted proxy: the client it names
		}
	}
	var x uint64
	if a.Is4() { // most addresses: their 32 bits, kept in registers
		x = uint64(v4(a))
	} else {
		b := a.As16()
		x = binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	}
	x *= 0x9e3779b97f4a7c15 // Fibonacci hashing spreads neighbouring addresses
	// The top 32 bits scaled to the shard count: a multiply, where a
	// modulo divides (tens of cycles, on every event).
	return int((x >> 32) * uint64(len(s.shards)) >> 32)
}

// chunk is a run of whole lines on its way through the stages: parsed by
// any worker, its events split by shard; each shard applies its rules and
// formats its reports; the writer merges those by line number. Its
// buffers are recycled once written, so scanning a big file allocates
// almost nothing per line. text points into buf, and nothing keeps a
// string of it past the chunk (mail lines, whose parser keeps ids, are
// copied).
type chunk struct {
	firstLine int
	buf       []byte
	text      string
	parsed    []parsedLine  // the chunk's events, in line order
	events    [][]int32     // by shard: indexes into parsed
	out       [][]byte      // by shard: formatted reports
	marks     [][]mark      // by shard: where each report ends
	done      chan struct{} // closed once events are filled in
	pending   atomic.Int32  // shards not done with the chunk
	applied   chan struct{} // closed by the last shard
}

type parsedLine struct {
	line int
	fam  int
	ev   logwatch.Event
	raw  string // maillog lines: parsed in order, the parser joins lines
}

// mark ends a report of line in its shard's output.
type mark struct{ line, end int }

var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, 0, chunkSize)} }}

// chunkSize is how much the scanner reads at a time; lines longer than
// four times that are dropped.
const chunkSize = 64 << 10

// scan reads r in chunks of whole lines, parses them on every core (each
// worker with parsers of its own), applies the rules in shards, and writes
// the reports in line order.
func (s *scanner) scan(ctx context.Context, r io.Reader, prefix string) error {
	workers := max(1, runtime.GOMAXPROCS(0))
	for len(s.parsers) < workers {
		s.parsers = append(s.parsers, s.newProcs())
	}
	jobs := make(chan *chunk, workers)
	toShard := make([]chan *chunk, len(s.shards))
	for i := range toShard {
		toShard[i] = make(chan *chunk, workers+1)
	}
	toWriter := make(chan *chunk, 2*workers+2)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				s.parseChunk(c, s.parsers[w])
				close(c.done)
			}
		}()
	}
	for i, sh := range s.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range toShard[i] {
				<-c.done
				sh.apply(c, i, prefix, s.now)
				if c.pending.Add(-1) == 0 {
					close(c.applied)
				}
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(toWriter)
		defer func() {
			close(jobs)
			for _, ch := range toShard {
				close(ch)
			}
		}()
		readErr <- s.readChunks(ctx, r, func(c *chunk) {
			jobs <- c
			for _, ch := range toShard {
				ch <- c
			}
			toWriter <- c
		})
	}()
	for c := range toWriter {
		<-c.applied
		s.writeMerged(c)
		// Not cleared: the events point into this chunk's own buffer,
		// which the pool keeps anyway, and clearing cost 3% of a scan.
		c.parsed = c.parsed[:0]
		for i := range c.events {
			c.events[i], c.out[i], c.marks[i] = c.events[i][:0], c.out[i][:0], c.marks[i][:0]
		}
		c.text = ""
		chunkPool.Put(c)
	}
	wg.Wait()
	return <-readErr
}

// readChunks cuts r into chunks at line ends and hands each on. It reads
// straight into the chunk's buffer: the only copy of a line is the short
// tail carried over to the next chunk.
func (s *scanner) readChunks(ctx context.Context, r io.Reader, send func(*chunk)) error {
	var carry []byte // a partial line, carried into the next chunk
	line := 1
	skipping := false // the rest of an over-long line is dropped
	for {
		// Interrupted (spfctl got SIGINT): stop between chunks; what was
		// read still goes through the rules and into the summary.
		if err := ctx.Err(); err != nil {
			return err
		}
		c := chunkPool.Get().(*chunk)
		buf := append(c.buf[:0], carry...)
		buf = slices.Grow(buf, s.readSize) // more only for a long line carried over
		n, err := io.ReadFull(r, buf[len(buf):len(buf)+s.readSize])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			chunkPool.Put(c)
			return err
		}
		carry = carry[:0]
		if skipping {
			// Never parse the tail of a line as a line of its own: its
			// start, where the header is, was cut off.
			i := bytes.IndexByte(buf, '\n')
			if i < 0 && !eof {
				c.buf = buf[:0]
				chunkPool.Put(c)
				continue
			}
			skipping = false
			line++
			s.lines++
			if i < 0 {
				buf = buf[:0]
			} else {
				buf = buf[:copy(buf, buf[i+1:])]
			}
		}
		if !eof {
			i := bytes.LastIndexByte(buf, '\n')
			if i < 0 {
				// A very long line: keep reading, up to a bound.
				if len(buf) <= 4*s.readSize {
					carry = append(carry, buf...)
				} else {
					skipping = true
				}
				c.buf = buf[:0]
				chunkPool.Put(c)
				continue
			}
			carry = append(carry, buf[i+1:]...)
			buf = buf[:i+1]
		}
		if len(buf) == 0 {
			c.buf = buf
			chunkPool.Put(c)
			return nil
		}
		c.buf = buf
		c.firstLine, c.text = line, unsafe.String(unsafe.SliceData(c.buf), len(c.buf))
		c.done, c.applied = make(chan struct{}), make(chan struct{})
		c.pending.Store(int32(len(s.shards)))
		for len(c.events) < len(s.shards) {
			c.events, c.out, c.marks = append(c.events, nil), append(c.out, nil), append(c.marks, nil)
		}
		lines := strings.Count(c.text, "\n")
		if !strings.HasSuffix(c.text, "\n") {
			lines++
		}
		line += lines
		s.lines += lines
		send(c)
		if eof {
			return nil
		}
	}
}

// parseChunk parses a chunk's lines and sorts the events by shard; mail
// lines wait for shard 0, whose parser joins them by session and queue id.
func (s *scanner) parseChunk(c *chunk, parsers []*logwatch.Processor) {
	text := c.text
	for n := c.firstLine; text != ""; n++ {
		line, rest, _ := strings.Cut(text, "\n")
		text = rest
		line = strings.TrimSuffix(line, "\r")
		switch fam := s.family(line); {
		case fam == famNone:
		case fams[fam].Joins:
			c.events[0] = append(c.events[0], int32(len(c.parsed)))
			c.parsed = append(c.parsed, parsedLine{line: n, fam: fam, raw: strings.Clone(line)})
		default:
			// Parse into the next slot, which stays unless the line says
			// nothing. A slot from the chunk's last use is taken as it is:
			// the parser writes the whole event, so zeroing it first
			// would be work done twice.
			if len(c.parsed) < cap(c.parsed) {
				c.parsed = c.parsed[:len(c.parsed)+1]
			} else {
				c.parsed = append(c.parsed, parsedLine{})
			}
			p := &c.parsed[len(c.parsed)-1]
			p.line, p.fam, p.raw = n, fam, ""
			if !parsers[fam].ParseInto(line, s.now, &p.ev) {
				c.parsed = c.parsed[:len(c.parsed)-1]
				continue
			}
			i := s.shardOf(fam, &p.ev)
			c.events[i] = append(c.events[i], int32(len(c.parsed)-1))
		}
	}
}

// apply runs the shard's rules over its events of c, in line order, and
// formats the reports.
func (sh *shard) apply(c *chunk, i int, prefix string, now time.Time) {
	out, marks := c.out[i], c.marks[i]
	for _, j := range c.events[i] {
		p := &c.parsed[j] // not a copy: an event is a few hundred bytes
		sh.outcomes = sh.outcomes[:0]
		if p.raw != "" {
			sh.outcomes = append(sh.outcomes, sh.procs[p.fam].Line(p.raw, now)...)
		} else {
			sh.outcomes = sh.procs[p.fam].AppendEvent(sh.outcomes, &p.ev, now)
		}
		for k := range sh.outcomes {
			out = sh.appendReport(out, prefix, p.line, &sh.outcomes[k]) // not copied: 120 bytes
			marks = append(marks, mark{p.line, len(out)})
		}
	}
	c.out[i], c.marks[i] = out, marks
}

// writeMerged writes a chunk's reports, merging the shards' by line.
func (s *scanner) writeMerged(c *chunk) {
	if len(s.shards) == 1 {
		s.out.Write(c.out[0])
		return
	}
	next := make([]int, len(s.shards)) // per shard: the next mark
	for {
		best := -1
		for i := range s.shards {
			if next[i] < len(c.marks[i]) && (best < 0 || c.marks[i][next[i]].line < c.marks[best][next[best]].line) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		// Take the best shard's run of reports up to the next line another
		// shard has.
		limit := math.MaxInt
		for i := range s.shards {
			if i != best && next[i] < len(c.marks[i]) {
				limit = min(limit, c.marks[i][next[i]].line)
			}
		}
		ms := c.marks[best]
		start := 0
		if next[best] > 0 {
			start = ms[next[best]-1].end
		}
		j := next[best]
		for j < len(ms) && ms[j].line < limit {
			j++
		}
		s.out.Write(c.out[best][start:ms[j-1].end])
		next[best] = j
	}
}

package state

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Sample is what spfd saw in one interval: what each list matched in the
// kernel, and what the mail log says the MTA did.
// Its JSON names are those of show stats and show report.
type Sample struct {
	WhitePackets     uint64 `json:"white_packets"` // matched by the list's table
	WhiteConnections uint64 `json:"white_connections"`
	BlackPackets     uint64 `json:"black_packets"`
	BlackConnections uint64 `json:"black_connections"` // new connections among them, where the kernel tells
	MailConnections  uint64 `json:"mail_connections"`  // SMTP connections the MTA accepted
	MailDeliveries   uint64 `json:"mail_deliveries"`   // messages it delivered
}

// Add adds o's counts to s's.
func (s *Sample) Add(o Sample) {
	s.WhitePackets += o.WhitePackets
	s.BlackPackets += o.BlackPackets
	s.WhiteConnections += o.WhiteConnections
	s.BlackConnections += o.BlackConnections
	s.MailConnections += o.MailConnections
	s.MailDeliveries += o.MailDeliveries
}

func (s Sample) fields() [6]uint64 {
	return [6]uint64{s.WhitePackets, s.BlackPackets, s.WhiteConnections, s.BlackConnections, s.MailConnections, s.MailDeliveries}
}

func sampleOf(f [6]uint64) Sample {
	return Sample{WhitePackets: f[0], BlackPackets: f[1], WhiteConnections: f[2], BlackConnections: f[3], MailConnections: f[4], MailDeliveries: f[5]}
}

// Point is one interval of a series.
type Point struct {
	Start time.Time
	Sample
}

// Resolutions of the series: a minute for the last 48 hours, an hour for
// the last 90 days. 5 040 points of 56 bytes: under 300 KB whatever the
// traffic.
const (
	MinuteSpan = 48 * time.Hour
	HourSpan   = 90 * 24 * time.Hour
)

// Series keeps the samples at both resolutions in rings.
type Series struct {
	minutes ring
	hours   ring
}

type ring struct {
	step    int64 // seconds
	buckets []bucket
}

type bucket struct {
	start  int64 // Unix seconds; 0: empty
	values [6]uint64
}

// NewSeries returns empty series.
func NewSeries() *Series {
	return &Series{
		minutes: ring{step: 60, buckets: make([]bucket, int(MinuteSpan/time.Minute))},
		hours:   ring{step: 3600, buckets: make([]bucket, int(HourSpan/time.Hour))},
	}
}

func (r *ring) add(t int64, s Sample) {
	start := t - t%r.step
	b := &r.buckets[(start/r.step)%int64(len(r.buckets))]
	if b.start != start {
		*b = bucket{start: start} // a bucket from a lap ago, or empty
	}
	v := sampleOf(b.values)
	v.Add(s)
	b.values = v.fields()
}

// Add records s as seen at t.
func (sr *Series) Add(t time.Time, s Sample) {
	u := t.Unix()
	sr.minutes.add(u, s)
	sr.hours.add(u, s)
}

// Points returns the intervals of step (time.Minute or time.Hour) that
// start in [from, to), oldest first, empty ones included; none from
// before the step's span.
func (sr *Series) Points(from, to time.Time, step time.Duration) []Point {
	r := &sr.hours
	if step == time.Minute {
		r = &sr.minutes
	}
	end := to.Unix()
	first := from.Unix() + (r.step-from.Unix()%r.step)%r.step // the first start at or after from
	oldest := end - end%r.step - r.step*int64(len(r.buckets)-1)
	if end%r.step == 0 {
		oldest += r.step // to itself starts no interval in range
	}
	var out []Point
	for t := max(first, oldest); t < end; t += r.step {
		p := Point{Start: time.Unix(t, 0)}
		if b := r.buckets[(t/r.step)%int64(len(r.buckets))]; b.start == t {
			p.Sample = sampleOf(b.values)
		}
		out = append(out, p)
	}
	return out
}

// Sum adds up the intervals that start in [from, to), at the finest
// resolution that reaches back that far.
func (sr *Series) Sum(from, to time.Time) Sample {
	step := time.Minute
	if to.Sub(from) > MinuteSpan {
		step = time.Hour
	}
	var s Sample
	for _, p := range sr.Points(from, to, step) {
		s.Add(p.Sample)
	}
	return s
}

// Window returns [from, to) covering the last span up to now, whole
// intervals of step, the current one included.
func Window(now time.Time, span, step time.Duration) (from, to time.Time) {
	to = now.Truncate(step).Add(step)
	return to.Add(-span), to
}

// The series file sits beside the snapshot, as the offenders do:
//
//	spfd-series 1
//	m|h <start unix> <white packets> <black packets> <white connections> <black connections> <mail connections> <mail deliveries>
//	END <records> <crc32 of everything before this line>
const (
	seriesFile  = "series"
	seriesMagic = "spfd-series 1"
)

func (sr *Series) marshal() []byte {
	return writeRecords(seriesMagic, func(emit func([]byte)) {
		var line []byte
		for _, r := range []struct {
			tag  byte
			ring *ring
		}{{'m', &sr.minutes}, {'h', &sr.hours}} {
			for _, bk := range r.ring.buckets {
				if bk.start == 0 {
					continue
				}
				line = append(line[:0], r.tag, ' ')
				line = strconv.AppendInt(line, bk.start, 10)
				for _, v := range bk.values {
					line = append(line, ' ')
					line = strconv.AppendUint(line, v, 10)
				}
				emit(line)
			}
		}
	})
}

// readSeries reads a series file into sr.
func readSeries(r io.Reader, sr *Series) error {
	return readRecords(r, seriesMagic, func(text string) error {
		f := strings.Fields(text)
		if len(f) != 8 || (f[0] != "m" && f[0] != "h") {
			return errors.New("malformed sample")
		}
		rg := &sr.minutes
		if f[0] == "h" {
			rg = &sr.hours
		}
		start, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || start <= 0 || start%rg.step != 0 {
			return fmt.Errorf("bad start %q", f[1])
		}
		var vals [6]uint64
		for i := range vals {
			if vals[i], err = strconv.ParseUint(f[2+i], 10, 64); err != nil {
				return fmt.Errorf("bad count %q", f[2+i])
			}
		}
		rg.buckets[(start/rg.step)%int64(len(rg.buckets))] = bucket{start: start, values: vals}
		return nil
	})
}

package state

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Samples land in their minute and hour; a bucket a lap old is reused
// empty; each resolution reaches back its span and no further.
func TestSeriesBuckets(t *testing.T) {
	sr := NewSeries()
	t0 := time.Date(2026, 11, 1, 10, 0, 30, 0, time.UTC)
	sr.Add(t0, Sample{BlackPackets: 5, MailConnections: 1})
	sr.Add(t0.Add(20*time.Second), Sample{BlackPackets: 2})
	sr.Add(t0.Add(2*time.Minute), Sample{WhitePackets: 7, MailDeliveries: 3})
	pts := sr.Points(t0.Add(-time.Minute), t0.Add(3*time.Minute), time.Minute)
	if len(pts) != 4 || pts[0].BlackPackets != 7 || pts[0].MailConnections != 1 || pts[2].WhitePackets != 7 || pts[1] != (Point{Start: pts[1].Start}) {
		t.Fatalf("minutes: %+v", pts)
	}
	if hour := sr.Points(t0.Truncate(time.Hour), t0.Truncate(time.Hour).Add(time.Hour), time.Hour); len(hour) != 1 || hour[0].BlackPackets != 7 || hour[0].WhitePackets != 7 || hour[0].MailDeliveries != 3 {
		t.Fatalf("hour: %+v", hour)
	}
	// Two days later the minute ring has come round: the old minute is
	// gone from it, and the hour still has it.
	later := t0.Add(MinuteSpan + time.Minute)
	sr.Add(later, Sample{BlackPackets: 1})
	if got := sr.Sum(Window(later, MinuteSpan, time.Minute)); got.BlackPackets != 1 {
		t.Fatalf("the last 48 hours: %+v", got)
	}
	if got := sr.Sum(t0.Add(-time.Hour), later.Add(time.Hour)); got.BlackPackets != 8 {
		t.Fatalf("hourly over three days: %+v", got)
	}
	// Past 90 days, nothing of t0.
	if got := sr.Sum(t0.Add(-time.Hour), t0.Add(HourSpan+2*time.Hour)); got.WhitePackets != 0 {
		t.Fatalf("after 90 days: %+v", got)
	}
}

// Ninety days of a busy host, a sample a minute, stay in a few hundred
// kilobytes, written and read back whole.
func TestSeriesBoundedAndPersisted(t *testing.T) {
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	sr := NewSeries()
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	end := t0.Add(HourSpan)
	for t := t0; t.Before(end); t = t.Add(time.Minute) {
		sr.Add(t, Sample{WhitePackets: 1000, BlackPackets: 1 << 40, MailConnections: 3, MailDeliveries: 2})
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	heap := int64(m1.HeapAlloc) - int64(m0.HeapAlloc)
	t.Logf("series after 90 simulated days: %d KB heap, %d KB on disk", heap>>10, len(sr.marshal())>>10)
	if heap > 1<<20 {
		t.Fatalf("series take %d bytes", heap)
	}
	back := NewSeries()
	if err := readSeries(strings.NewReader(string(sr.marshal())), back); err != nil {
		t.Fatal(err)
	}
	last := end.Add(-time.Minute)
	if a, b := sr.Sum(Window(last, 24*time.Hour, time.Minute)), back.Sum(Window(last, 24*time.Hour, time.Minute)); a != b || a.MailConnections != 3*24*60 {
		t.Fatalf("a day: %+v, read back %+v", a, b)
	}
	if a, b := sr.Sum(Window(last, 80*24*time.Hour, time.Hour)), back.Sum(Window(last, 80*24*time.Hour, time.Hour)); a != b || a.MailDeliveries != 2*80*24*60 {
		t.Fatalf("80 days: %+v, read back %+v", a, b)
	}
	for name, bad := range map[string]string{
		"truncated": strings.SplitAfter(string(sr.marshal()), "\n")[0],
		"changed":   strings.Replace(string(sr.marshal()), " 1000 ", " 1001 ", 1),
		"bad start": seriesMagic + "\nm 61 0 0 0 0 0 0\nEND 1 00000000\n",
	} {
		if err := readSeries(strings.NewReader(bad), NewSeries()); err == nil {
			t.Errorf("%s: read without an error", name)
		}
	}
	runtime.KeepAlive(sr)
}

// The state saves the series with its snapshots and reads it back.
func TestStateKeepsSeries(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, _, err := Open(dir, clock, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.AddSample(now, Sample{BlackPackets: 42, MailDeliveries: 9})
	if err := st.Snapshot(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := os.Stat(filepath.Join(dir, seriesFile)); err != nil {
		t.Fatal(err)
	}
	st, warnings, err := Open(dir, clock, Options{})
	if err != nil || len(warnings) > 0 {
		t.Fatal(err, warnings)
	}
	defer st.Close()
	if got := st.SeriesSum(Window(now, time.Hour, time.Minute)); got.BlackPackets != 42 || got.MailDeliveries != 9 {
		t.Fatalf("after a restart: %+v", got)
	}
}

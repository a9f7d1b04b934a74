package clock

import (
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case t := <-c:
		return t, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimer(t *testing.T) {
	f := NewFake(epoch)
	tm := f.NewTimer(time.Minute)
	f.Advance(59 * time.Second)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("fired early")
	}
	f.Advance(time.Second)
	if at, ok := fired(tm.C()); !ok || !at.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("fired %v at %v, want at +1m", ok, at)
	}
	if f.Waiters() != 0 || tm.Stop() {
		t.Error("a fired timer is still armed")
	}
	if tm.Reset(time.Hour) {
		t.Error("Reset of a fired timer says it was active")
	}
	f.Advance(2 * time.Hour)
	if at, ok := fired(tm.C()); !ok || !at.Equal(epoch.Add(time.Hour+time.Minute)) {
		t.Fatalf("reset timer fired %v at %v", ok, at)
	}
	stopped := f.NewTimer(time.Second)
	if !stopped.Stop() {
		t.Error("Stop of an armed timer says it was not")
	}
	f.Advance(time.Minute)
	if _, ok := fired(stopped.C()); ok {
		t.Error("a stopped timer fired")
	}
	if _, ok := fired(f.NewTimer(0).C()); !ok {
		t.Error("a zero timer did not fire at once")
	}
}

func TestFakeTickerDropsUnreadTicks(t *testing.T) {
	f := NewFake(epoch)
	tk := f.NewTicker(10 * time.Second)
	f.Advance(35 * time.Second) // three ticks, one buffered
	if at, ok := fired(tk.C()); !ok || !at.Equal(epoch.Add(10*time.Second)) {
		t.Fatalf("first tick %v at %v", ok, at)
	}
	if _, ok := fired(tk.C()); ok {
		t.Fatal("unread ticks were queued")
	}
	f.Advance(5 * time.Second)
	if at, ok := fired(tk.C()); !ok || !at.Equal(epoch.Add(40*time.Second)) {
		t.Fatalf("next tick %v at %v, want at +40s", ok, at)
	}
	tk.Stop()
	f.Advance(time.Minute)
	if _, ok := fired(tk.C()); ok || f.Waiters() != 0 {
		t.Error("a stopped ticker ticked")
	}
	if !f.Now().Equal(epoch.Add(100 * time.Second)) {
		t.Errorf("now %v", f.Now())
	}
}

func TestRealClock(t *testing.T) {
	at := epoch
	r := Real{NowFunc: func() time.Time { return at }}
	if !r.Now().Equal(epoch) {
		t.Error("NowFunc ignored")
	}
	select {
	case <-After(r, time.Millisecond):
	case <-time.After(5 * time.Second):
		t.Fatal("a real timer did not fire")
	}
}

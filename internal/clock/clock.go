// Package clock gives the daemon's time: now, timers and tickers, real or
// driven by a test, so that schedules, expiry, feed refreshes and BGP
// timing are tested without sleeping.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time and makes timers and tickers that follow it.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
}

// Timer is a time.Timer on a Clock.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a time.Ticker on a Clock.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// After is time.After on c.
func After(c Clock, d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

// Real is the system's clock. NowFunc, when set, replaces time.Now for
// Now only (timers stay real).
type Real struct{ NowFunc func() time.Time }

// Now implements Clock.
func (r Real) Now() time.Time {
	if r.NowFunc != nil {
		return r.NowFunc()
	}
	return time.Now()
}

// NewTimer implements Clock.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

// NewTicker implements Clock.
func (Real) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time        { return t.t.C }
func (t realTimer) Stop() bool                 { return t.t.Stop() }
func (t realTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type realTicker struct{ t *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.t.C }
func (t realTicker) Stop()               { t.t.Stop() }

// Fake is a clock that moves only when told to. Its timers and tickers
// fire, in order of their deadlines, as Advance passes them; like real
// ones, a ticker whose reader is slow drops ticks.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	waiters []*fakeTimer
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now implements Clock.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Waiters reports how many timers and tickers are armed: a test waits
// for a loop to arm its timer before it advances the clock.
func (f *Fake) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// Advance moves the clock forward by d, firing what falls due.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		var next *fakeTimer
		for _, w := range f.waiters {
			if !w.at.After(end) && (next == nil || w.at.Before(next.at)) {
				next = w
			}
		}
		if next == nil {
			break
		}
		f.now = next.at
		select {
		case next.c <- f.now:
		default: // an unread tick is dropped, as time.Ticker does
		}
		if next.period > 0 {
			next.at = next.at.Add(next.period)
		} else {
			f.remove(next)
		}
	}
	f.now = end
}

func (f *Fake) remove(t *fakeTimer) bool {
	for i, w := range f.waiters {
		if w == t {
			f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
			return true
		}
	}
	return false
}

func (f *Fake) arm(t *fakeTimer, d time.Duration) bool {
	was := f.remove(t)
	t.at = f.now.Add(d)
	f.waiters = append(f.waiters, t)
	return was
}

type fakeTimer struct {
	f      *Fake
	c      chan time.Time
	at     time.Time
	period time.Duration // tickers
}

// NewTimer implements Clock.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		t.c <- f.now
		return t
	}
	f.arm(t, d)
	return t
}

// NewTicker implements Clock. Where time.NewTicker panics on a
// non-positive interval, this one ticks every second.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		d = time.Second
	}
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), period: d}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return fakeTicker{t}
}

type fakeTicker struct{ t *fakeTimer }

func (t fakeTicker) C() <-chan time.Time { return t.t.c }
func (t fakeTicker) Stop()               { t.t.Stop() }

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.f.remove(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	if d <= 0 {
		was := t.f.remove(t)
		select {
		case t.c <- t.f.now:
		default:
		}
		return was
	}
	return t.f.arm(t, d)
}

package daemon

import (
	"context"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/spfd/spfd/control"
	"github.com/spfd/spfd/internal/state"
)

// slowDisk is a journal whose fsync waits until released.
type slowDisk struct {
	*os.File
	syncing chan struct{}
	release chan struct{}
}

func (f slowDisk) Sync() error {
	select {
	case f.syncing <- struct{}{}:
		<-f.release
	default:
	}
	return f.File.Sync()
}

// While a change waits for the disk, readers of the state do not: the
// fsync happens outside the daemon's lock.
func TestFsyncOutsideTheLock(t *testing.T) {
	syncing, release := make(chan struct{}, 1), make(chan struct{})
	h := newHarnessWith(t, exampleZone, "domain example.com", func(o *Options) {
		o.OpenJournal = func(path string) (state.JournalFile, error) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			return slowDisk{f, syncing, release}, err
		}
	})
	added := make(chan error, 1)
	go func() {
		added <- h.d.cmdAdd(io.Discard, control.Command{Name: "add", List: "black", Prefix: netip.MustParsePrefix("203.0.113.9/32")})
	}()
	<-syncing // the add is in fsync now
	answered := make(chan struct{})
	go func() {
		h.d.state.Exempt(netip.MustParseAddr("198.51.100.1"))
		h.d.showStatus(context.Background(), io.Discard, control.Request{})
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatal("a reader waited for the journal's fsync")
	}
	early := h.d.state.Contains(state.Black, netip.MustParsePrefix("203.0.113.9/32"))
	if early {
		t.Error("the change was applied before it was on disk")
	}
	close(release)
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if !h.d.state.Contains(state.Black, netip.MustParsePrefix("203.0.113.9/32")) {
		t.Error("the acknowledged change is not applied")
	}
}

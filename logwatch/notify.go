package logwatch

import (
	"os"
	"unsafe"
)

// notifier wakes a follower when its file may have changed. Followers
// poll as well, so a lost event only delays a line.
type notifier interface {
	events() <-chan struct{}
	// watch is told of each newly opened file (kqueue watches the
	// descriptor itself).
	watch(*os.File)
	close()
}

// pollOnly is the notifier of last resort: it never fires.
type pollOnly struct{}

func (pollOnly) events() <-chan struct{} { return nil }
func (pollOnly) watch(*os.File)          {}
func (pollOnly) close()                  {}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(&b[0]) }

package logwatch

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// kqueueNotifier watches the open log file's own descriptor with kqueue
// (EVFILT_VNODE: write, extend, truncate, rename, delete) and the log's
// directory for new entries, rather than fsnotify's directory watch,
// which opens every file in /var/log.
type kqueueNotifier struct {
	c    chan struct{}
	kq   int
	dir  *os.File
	done chan struct{}
}

func newNotifier(path string) notifier {
	kq, err := unix.Kqueue()
	if err != nil {
		return pollOnly{}
	}
	n := &kqueueNotifier{c: make(chan struct{}, 1), kq: kq, done: make(chan struct{})}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		n.dir = d
		n.register(d, unix.NOTE_WRITE)
	}
	go n.loop()
	return n
}

func (n *kqueueNotifier) register(f *os.File, fflags uint32) {
	var ev unix.Kevent_t
	unix.SetKevent(&ev, int(f.Fd()), unix.EVFILT_VNODE, unix.EV_ADD|unix.EV_CLEAR)
	ev.Fflags = fflags
	unix.Kevent(n.kq, []unix.Kevent_t{ev}, nil, nil)
}

// watch registers a newly opened log file; the old registration goes
// away when the follower closes the old descriptor.
func (n *kqueueNotifier) watch(f *os.File) {
	n.register(f, unix.NOTE_WRITE|unix.NOTE_EXTEND|unix.NOTE_TRUNCATE|unix.NOTE_RENAME|unix.NOTE_DELETE|unix.NOTE_ATTRIB)
}

func (n *kqueueNotifier) loop() {
	events := make([]unix.Kevent_t, 8)
	timeout := unix.NsecToTimespec(int64(500e6))
	for {
		select {
		case <-n.done:
			return
		default:
		}
		k, err := unix.Kevent(n.kq, nil, events, &timeout)
		if err != nil && err != unix.EINTR {
			return
		}
		if k > 0 {
			select {
			case n.c <- struct{}{}:
			default:
			}
		}
	}
}

func (n *kqueueNotifier) events() <-chan struct{} { return n.c }

func (n *kqueueNotifier) close() {
	close(n.done)
	unix.Close(n.kq)
	if n.dir != nil {
		n.dir.Close()
	}
}

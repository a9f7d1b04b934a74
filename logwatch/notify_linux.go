package logwatch

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// inotifyNotifier watches the log's directory with inotify, so it sees
// the file being written, renamed, removed and created again, and wakes
// the follower for events on names that start with the log's (the log and
// its rotated copies). It never stops the process: if inotify cannot be
// had, the follower polls.
type inotifyNotifier struct {
	c    chan struct{}
	file *os.File
}

func newNotifier(path string) notifier {
	n := &inotifyNotifier{c: make(chan struct{}, 1)}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return pollOnly{}
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
		unix.IN_DELETE | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return pollOnly{}
	}
	n.file = os.NewFile(uintptr(fd), "inotify")
	go n.read(base)
	return n
}

func (n *inotifyNotifier) read(base string) {
	buf := make([]byte, 64<<10)
	for {
		k, err := n.file.Read(buf)
		if err != nil {
			return // closed
		}
		wake := false
		for off := 0; off+unix.SizeofInotifyEvent <= k; {
			ev := (*unix.InotifyEvent)(ptr(buf[off:]))
			nameLen := int(ev.Len)
			name := ""
			if nameLen > 0 && off+unix.SizeofInotifyEvent+nameLen <= k {
				name = strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+nameLen]), "\x00")
			}
			if strings.HasPrefix(name, base) || ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				wake = true
			}
			off += unix.SizeofInotifyEvent + nameLen
		}
		if wake {
			select {
			case n.c <- struct{}{}:
			default:
			}
		}
	}
}

func (n *inotifyNotifier) events() <-chan struct{} { return n.c }
func (n *inotifyNotifier) watch(*os.File)          {}
func (n *inotifyNotifier) close()                  { n.file.Close() }

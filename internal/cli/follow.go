package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/nxadm/tail"
)

// scanFollow is scan -f: follow one file as tail -F does and report
// events as lines arrive, to watch a rule at work (start an ssh attack in
// another window and see what spfd would do). It uses nxadm/tail, which
// in an interactive tool may end the process on a stat error; the daemon
// follows files with logwatch.Follower instead, which never does.
func (s *scanner) follow(env Env, path string) error {
	// Lines are numbered as in the file: count those already there, then
	// follow from the end of what was counted.
	start, base, err := countLines(path)
	if err != nil {
		return err
	}
	followCounted() // lines from here on are followed
	t, err := tail.TailFile(path, tail.Config{
		Follow: true,
		ReOpen: true,
		// Polling, four times a second: tail's inotify watch is set up
		// only after it reads to the end, and a line written in between
		// waited for the next write, or went with a rotation.
		Poll:     true,
		Location: &tail.SeekInfo{Offset: start, Whence: io.SeekStart},
		Logger:   tail.DiscardingLogger,
	})
	if err != nil {
		return err
	}
	defer t.Cleanup()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-env.Ctx.Done():
			t.Stop()
		case <-stop:
		}
	}()
	last := 0
	var buf []byte
	for line := range t.Lines {
		if line.Err != nil {
			return line.Err
		}
		// tail numbers lines from 1 again when it reopens the file.
		if line.Num <= last {
			base = 0
			fmt.Fprintf(s.out, "# %s was rotated or truncated: line numbers restart at 1\n", path)
		}
		last = line.Num
		s.lines++ // the summary counts what was read
		s.now = time.Now()
		if fam := s.family(line.Text); fam != famNone {
			sh := s.shards[0]
			for _, o := range sh.procs[fam].Line(line.Text, s.now) {
				buf = sh.appendReport(buf[:0], "", base+line.Num, &o)
				s.out.Write(buf)
			}
		}
		if err := s.out.Flush(); err != nil {
			return err
		}
	}
	if err := env.Ctx.Err(); err != nil {
		return nil // interrupted: the normal way out
	}
	return fmt.Errorf("%s: stopped following", path)
}

// followCounted is called once follow has counted the lines already
// there; tests wait for it before they write.
var followCounted = func() {}

// countLines returns a file's size and the lines in it; a missing file,
// which tail waits for, has none.
func countLines(path string) (size int64, lines int, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for {
		n, err := f.Read(buf)
		size += int64(n)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		if err == io.EOF {
			return size, lines, nil
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

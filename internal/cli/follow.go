package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/nxadm/tail"
)

// scanFollow is scan -f: follow one file as tail -F does and report
// events as lines arrive, to watch a rule at work (start an ssh attack in
// another window and see what spfd would do). It uses nxadm/tail, which
// in an interactive tool may end the process on a stat error; the daemon
// follows files with logwatch.Follower instead, which never does.
func (s *scanner) follow(env Env, path string) error {
	t, err := tail.TailFile(path, tail.Config{
		Follow:   true,
		ReOpen:   true,
		Location: &tail.SeekInfo{Whence: io.SeekEnd},
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
	n := 0
	var buf []byte
	for line := range t.Lines {
		if line.Err != nil {
			return line.Err
		}
		n++
		s.lines++ // the summary counts what was read
		s.now = time.Now()
		if fam := s.family(line.Text); fam != famNone {
			sh := s.shards[0]
			for _, o := range sh.procs[fam].Line(line.Text, s.now) {
				buf = sh.appendReport(buf[:0], "", n, o)
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

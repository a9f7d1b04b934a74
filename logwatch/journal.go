package logwatch

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strconv"
	"time"
)

// JournalEntry is one journal record, with the fields the kernel and
// systemd supply (_COMM, _SYSTEMD_UNIT), never the sender-supplied
// SYSLOG_IDENTIFIER, which any local process can set to "sshd".
type JournalEntry struct {
	Message string
	Comm    string
	Unit    string
	Cursor  string
	Time    time.Time
	PID     int // _PID, set by the journal
}

// Journal follows a systemd unit's journal through journalctl -f -o json,
// resuming after a saved cursor.
type Journal struct {
	Unit   string
	Cursor string // resume after this entry; empty: from now on
	// Command is journalctl's path (default "journalctl").
	Command string
	Logf    func(format string, args ...any)
}

// maxJournalLine bounds one JSON record.
const maxJournalLine = 1 << 20

// Run follows the journal until ctx ends, restarting journalctl with
// backoff when it exits.
func (j *Journal) Run(ctx context.Context, out chan<- []JournalEntry) error {
	cmd := j.Command
	if cmd == "" {
		cmd = "journalctl"
	}
	backoff := time.Second
	for ctx.Err() == nil {
		err := j.once(ctx, cmd, out)
		if ctx.Err() != nil {
			return nil
		}
		if j.Logf != nil {
			j.Logf("journalctl for %s stopped (%v); restarting in %s", j.Unit, err, backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
	return nil
}

func (j *Journal) once(ctx context.Context, command string, out chan<- []JournalEntry) error {
	args := []string{"-f", "-o", "json", "--no-pager", "-u", j.Unit}
	if j.Cursor != "" {
		args = append(args, "--after-cursor="+j.Cursor)
	} else {
		args = append(args, "-n", "0")
	}
	cmd := exec.CommandContext(ctx, command, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	// Records are read as lines, and one longer than maxJournalLine is
	// skipped whole. (bufio.Scanner stops at such a line, and journalctl
	// -f, no longer read, would block and never exit.)
	records := lineSplitter{max: maxJournalLine}
	buf := make([]byte, 64<<10)
	var readErr error
	for readErr == nil {
		var n int
		n, readErr = stdout.Read(buf)
		for _, rec := range records.split(buf[:n]) {
			e, ok := ParseJournalJSON([]byte(rec))
			if !ok {
				continue
			}
			j.Cursor = e.Cursor
			if e.Unit != j.Unit {
				continue // -u also matches messages about the unit
			}
			select {
			case out <- []JournalEntry{e}:
			case <-ctx.Done():
			}
		}
	}
	err = cmd.Wait()
	if err == nil && !errors.Is(readErr, io.EOF) {
		err = readErr
	}
	return err
}

// ParseJournalJSON reads one record of journalctl -o json. MESSAGE may be
// a string or, when not UTF-8, an array of bytes.
func ParseJournalJSON(b []byte) (JournalEntry, bool) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return JournalEntry{}, false
	}
	str := func(k string) string {
		var s string
		if json.Unmarshal(raw[k], &s) == nil {
			return s
		}
		var bs []byte
		var ints []int
		if json.Unmarshal(raw[k], &ints) == nil {
			for _, i := range ints {
				bs = append(bs, byte(i))
			}
			return string(bs)
		}
		return ""
	}
	e := JournalEntry{Message: str("MESSAGE"), Comm: str("_COMM"), Unit: str("_SYSTEMD_UNIT"), Cursor: str("__CURSOR")}
	e.PID, _ = strconv.Atoi(str("_PID"))
	if us, err := strconv.ParseInt(str("__REALTIME_TIMESTAMP"), 10, 64); err == nil {
		e.Time = time.UnixMicro(us)
	}
	return e, e.Cursor != "" && e.Message != ""
}

// Message turns a journal entry into an event with the source's parser,
// trusting only the kernel-supplied command name for the program.
func (p *Processor) Message(e JournalEntry, now time.Time) []Outcome {
	if p.parser == nil {
		return nil
	}
	ev, ok := p.parser.Journal(e, now)
	if !ok {
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = e.Time
	}
	return p.Event(ev, now)
}

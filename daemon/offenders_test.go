package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/control"
)

// An address that sshd's log gets listed again after its hold ran out is
// held twice as long each time, up to the cap; lines while it is held are
// the same offence. The count shows in show blacklist -v, and spfctl
// delete forgets it (state's tests show that it survives restarts).
func TestRepeatOffendersHeldLonger(t *testing.T) {
	dir := t.TempDir()
	authlog := filepath.Join(dir, "authlog")
	if err := os.WriteFile(authlog, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("log sshd file %q threshold 1 within 1h ttl 1d\nrepeat-offenders max-ttl 3d\n", authlog)
	h := newHarness(t, exampleZone, conf)
	ctx := h.run(t)
	// The follower is running once it has read a line: append harmless
	// ones until it has.
	waitUntil(t, func() bool {
		appendFile(t, authlog, "Nov 27 19:00:00 host sshd[1]: Connection closed by 192.0.2.1 port 1 [preauth]\n")
		return h.d.position(authlog) != nil
	})
	lines := 0
	attack := func() {
		t.Helper()
		lines++
		appendFile(t, authlog, fmt.Sprintf("Nov 27 20:00:00 host sshd[%d]: Invalid user admin from 198.51.100.7 port %d\n", 1000+lines, 40000+lines))
		waitUntil(t, func() bool {
			p := h.d.position(authlog)
			st, err := os.Stat(authlog)
			return p != nil && err == nil && p.Offset == st.Size()
		})
	}
	type shown struct {
		Prefix   string `json:"prefix"`
		Offences int    `json:"offences"`
		Sources  []struct {
			Source  string    `json:"source"`
			Expires time.Time `json:"expires"`
		} `json:"sources"`
	}
	show := func() shown {
		t.Helper()
		var out strings.Builder
		if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"show", "blacklist"}, Verbose: true, JSON: true}, &out); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var s shown
			if json.Unmarshal([]byte(line), &s) == nil && s.Prefix == "198.51.100.7/32" {
				return s
			}
		}
		return shown{}
	}
	hold := func() time.Duration {
		t.Helper()
		s := show()
		if len(s.Sources) != 1 {
			t.Fatalf("entry %+v", s)
		}
		return s.Sources[0].Expires.Sub(h.clock.Now().Truncate(time.Second))
	}
	expire := func() {
		t.Helper()
		h.clock.Advance(hold() + time.Minute)
		h.d.expire()
		if s := show(); s.Prefix != "" {
			t.Fatalf("still listed after its hold: %+v", s)
		}
	}
	day := 24 * time.Hour
	attack()
	if got, s := hold(), show(); got != day || s.Offences != 1 {
		t.Fatalf("first listing: hold %v, offence %d; want 24h, 1", got, s.Offences)
	}
	h.clock.Advance(time.Hour)
	attack() // while held: the same offence, held anew for a day
	if got, s := hold(), show(); got != day || s.Offences != 1 {
		t.Fatalf("a line while held: hold %v, offence %d; want 24h, 1", got, s.Offences)
	}
	expire()
	attack()
	if got, s := hold(), show(); got != 2*day || s.Offences != 2 {
		t.Fatalf("second listing: hold %v, offence %d; want 48h, 2", got, s.Offences)
	}
	expire()
	attack()
	if got := hold(); got != 3*day {
		t.Fatalf("third listing: hold %v, want the 3d cap", got)
	}

	// spfctl delete forgets the offender: listed again, it starts over.
	var out strings.Builder
	if err := control.Do(ctx, h.d.opts.SocketPath, control.Request{Args: []string{"delete", "black", "198.51.100.7"}}, &out); err != nil {
		t.Fatal(err)
	}
	attack()
	if got, s := hold(), show(); got != day || s.Offences != 1 {
		t.Fatalf("after spfctl delete: hold %v, offence %d; want 24h, 1", got, s.Offences)
	}
}

package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFindLocal(t *testing.T) {
	tests := []struct {
		word, want, err string
	}{
		{"walk", "walk", ""},
		{"w", "walk", ""},
		{"show", "", ""},
		{"sh", "", ""},
		{"sc", "scan", ""},
		{"s", "", "ambiguous command \"s\": scan, show"},
		{"re", "", "ambiguous command \"re\": reload, report, rewalk"},
		{"nosuch", "", ""},
	}
	for _, tt := range tests {
		c, err := findLocal(tt.word)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("findLocal(%q): err %v, want %q", tt.word, err, tt.err)
			}
			continue
		}
		got := ""
		if c != nil {
			got = c.name
		}
		if err != nil || got != tt.want {
			t.Errorf("findLocal(%q) = %q, %v; want %q", tt.word, got, err, tt.want)
		}
	}
}

func TestMainUsage(t *testing.T) {
	for _, tt := range []struct {
		args       []string
		code       int
		want, also string // in the output (stdout for help, stderr else)
	}{
		{nil, ExitUsage, "usage: spfctl", ""},
		{[]string{"show"}, ExitUsage, `incomplete command "show"`, "see spfctl help show"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate" (want add, delete, domain, expire, log, reload, report, rewalk, scan, show, walk)`, ""},
		{[]string{"add", "white"}, ExitUsage, "want an address or prefix", "see spfctl help add"},
		{[]string{"s", "st"}, ExitUsage, `ambiguous command "s": scan, show`, ""},
		{[]string{"-x"}, ExitUsage, "see spfctl help", ""},
		{[]string{"help"}, ExitOK, "usage: spfctl", "spfctl walk"},
		{[]string{"help", "show"}, ExitOK, "spfctl show domains [-v]", "spfctl show status"},
		{[]string{"--help"}, ExitOK, "usage: spfctl", ""},
		{[]string{"-h"}, ExitOK, "usage: spfctl", ""},
		{[]string{"help", "zz"}, ExitUsage, `no command "zz"`, ""},
		{[]string{"-j", "add", "black", "192.0.2.1"}, ExitUsage, "-j: only the show commands print JSON; add prints text", ""},
		{[]string{"-j", "walk", "example.com"}, ExitUsage, "-j: only the show commands print JSON; walk prints text", ""},
		{[]string{"rewalk", "-j"}, ExitUsage, "-j: only the show commands print JSON; rewalk prints text", ""},
	} {
		var out, errOut bytes.Buffer
		env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
		code := Main(env, tt.args)
		text := errOut.String()
		if tt.code == ExitOK {
			text = out.String()
		}
		if code != tt.code || !strings.Contains(text, tt.want) || !strings.Contains(text, tt.also) {
			t.Errorf("%q: exit %d, output %q; want %d and %q, %q", tt.args, code, text, tt.code, tt.want, tt.also)
		}
		// A usage error is a line and a hint, not the whole usage.
		if tt.code == ExitUsage && tt.args != nil && strings.Count(errOut.String(), "\n") > 3 {
			t.Errorf("%q: %d lines on a usage error:\n%s", tt.args, strings.Count(errOut.String(), "\n"), errOut.String())
		}
	}
}

func TestMainNoDaemon(t *testing.T) {
	var out, errOut bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code := Main(env, []string{"-s", t.TempDir() + "/none.sock", "show", "status"})
	if code != ExitFailure || !strings.Contains(errOut.String(), "connecting to spfd") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

// walk -t takes a duration with its unit and a positive one; an
// interrupted walk says so, prints nothing, and exits 1.
func TestWalkTimeoutAndInterrupt(t *testing.T) {
	for _, tt := range []struct{ arg, want string }{
		{"5", `"5" needs a unit, such as 5s or 5ms`},
		{"-1s", "must be positive"},
		{"0", "must be positive"},
		{"soon", "is not a duration"},
	} {
		var out, errOut bytes.Buffer
		env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
		if code := Main(env, []string{"walk", "-t", tt.arg, "-s", "127.0.0.1:1", "example.org"}); code != ExitUsage || !strings.Contains(errOut.String(), tt.want) {
			t.Errorf("-t %s: exit %d, stderr %q, want %q", tt.arg, code, errOut.String(), tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	env := Env{Ctx: ctx, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	code := Main(env, []string{"walk", "-s", "127.0.0.1:1", "example.org"})
	if code != ExitFailure || errOut.String() != "spfctl walk: interrupted\n" || out.Len() != 0 {
		t.Errorf("interrupted walk: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// Reading domains from a terminal (a pipe that never ends, here), ^C
// stops the walk at once.
func TestWalkInterruptedWhileReading(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(Env{Ctx: ctx, Stdin: pr, Stdout: &out, Stderr: &errOut}, []string{"walk", "-s", "127.0.0.1:1"})
	}()
	cancel()
	select {
	case code := <-done:
		if code != ExitFailure || !strings.Contains(errOut.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("walk went on reading after the interrupt")
	}
}

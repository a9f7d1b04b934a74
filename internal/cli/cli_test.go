package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
		{"re", "", "ambiguous command \"re\": reload, rewalk"},
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
	for _, args := range [][]string{nil, {"show"}, {"frobnicate"}, {"add", "white"}, {"-x"}} {
		var out, errOut bytes.Buffer
		env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
		if code := Main(env, args); code != ExitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, ExitUsage)
		}
		if !strings.Contains(errOut.String(), "usage: spfctl") {
			t.Errorf("%q: no usage text: %q", args, errOut.String())
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

package ctl

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestLookupAbbreviations(t *testing.T) {
	tests := []struct {
		word, want, err string
	}{
		{"walk", "walk", ""},
		{"w", "walk", ""},
		{"wa", "walk", ""},
		{"walker", "", "unknown command"},
		{"x", "", "unknown command"},
	}
	for _, tt := range tests {
		c, err := lookup(tt.word)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("lookup(%q): err %v, want %q", tt.word, err, tt.err)
			}
			continue
		}
		if err != nil || c.name != tt.want {
			t.Errorf("lookup(%q) = %q, %v; want %q", tt.word, c.name, err, tt.want)
		}
	}
}

func TestMainUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	env := Env{Ctx: context.Background(), Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut}
	if code := Main(env, nil); code != ExitUsage {
		t.Errorf("no arguments: exit %d, want %d", code, ExitUsage)
	}
	if !strings.Contains(errOut.String(), "usage: spfctl") {
		t.Errorf("no usage text: %q", errOut.String())
	}
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spfd/spfd/internal/nsdtest"
)

// docExamples returns the spfctl command lines the README shows in its
// indented blocks and the man pages in .Dl lines, synopses left out.
func docExamples(t *testing.T) []string {
	t.Helper()
	var out []string
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(l, "    ") && strings.Contains(l, "spfctl ") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	pages, _ := filepath.Glob("../../man/*.[58]")
	for _, p := range pages {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if cmd, ok := strings.CutPrefix(l, ".Dl "); ok && strings.Contains(cmd, "spfctl ") {
				out = append(out, strings.ReplaceAll(cmd, `\*(Lt`, "<"))
			}
		}
	}
	var examples []string
	for _, c := range out {
		if strings.Contains(c, "[-") || strings.Contains(c, "command [argument") {
			continue // a synopsis
		}
		examples = append(examples, c)
	}
	return examples
}

var (
	cronTimes   = regexp.MustCompile(`^([0-9*,/-]+ ){5}`)
	lineComment = regexp.MustCompile(`\s{2,}#.*$`)
	spfctlWord  = regexp.MustCompile(`(^|[\s|])(bin/)?spfctl( -s \S+)?\s`)
	otherTool   = regexp.MustCompile(`(^|[\s|])(pfctl|nft)\s`)
)

// TestDocExamples runs every spfctl example of the README and the man
// pages against a live daemon, the paths they name pointed at the test's
// own files, so the docs and the code cannot drift apart: each must exit 0.
func TestDocExamples(t *testing.T) {
	dns := nsdtest.Start(t, zonesDir)
	in := newInstance(t, dns, `log sshd file "`+mustAbs(t, "../../testdata/logs/authlog")+`"`)
	in.start()
	bin := filepath.Dir(in.spfctl)
	if err := os.WriteFile(filepath.Join(in.dir, "domains.txt"), []byte("google.com\noutlook.com # two of the common ones\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	authlog := mustAbs(t, "../../testdata/logs/authlog")
	examples := docExamples(t)
	if len(examples) < 10 {
		t.Fatalf("found only %d examples in the docs: %q", len(examples), examples)
	}
	for _, ex := range examples {
		cmd := cronTimes.ReplaceAllString(ex, "")
		cmd = lineComment.ReplaceAllString(cmd, "")
		cmd = strings.ReplaceAll(cmd, "doas ", "")
		cmd = spfctlWord.ReplaceAllString(cmd, "${1}spfctl -s "+in.sock+" ")
		cmd = strings.NewReplacer("/etc/spfd.conf", in.conf, "/var/log/auth.log", authlog, "/var/log/authlog", authlog,
			"127.0.0.1:5353", dns, "/var/www/htdocs/", in.dir+"/").Replace(cmd)
		if otherTool.MatchString(cmd) {
			continue // pfctl and nft are tested where the kernel is
		}
		t.Run(ex, func(t *testing.T) {
			// mail stands for the cron mail a real host would send.
			sh := exec.Command("bash", "-o", "pipefail", "-c", "mail() { cat >/dev/null; }; "+cmd)
			sh.Dir = in.dir
			sh.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
			out, err := sh.CombinedOutput()
			if err != nil {
				t.Errorf("%s\n(run as %s): %v\n%s", ex, cmd, err, out)
			}
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

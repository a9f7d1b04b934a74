package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstall runs make install into a staging root, lints the installed
// man pages with mandoc and verifies the systemd unit.
func TestInstall(t *testing.T) {
	for _, tool := range []string{"make", "mandoc", "systemd-analyze"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed; CI must run this test", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	dest := t.TempDir()
	out, err := exec.Command("make", "-C", "../..", "install", "DESTDIR="+dest).CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/local/sbin/spfd", "usr/local/sbin/spfctl", "usr/local/share/man/man8/spfd.8",
		"usr/local/share/man/man8/spfctl.8", "usr/local/share/man/man5/spfd.conf.5", "etc/spfd.conf",
		"etc/spfd/common_domains.txt", "lib/systemd/system/spfd.service", "usr/local/share/examples/spfd/pf.conf.example"} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	pages, _ := filepath.Glob(filepath.Join(dest, "usr/local/share/man/man*/*"))
	if out, err := exec.Command("mandoc", append([]string{"-Tlint", "-W", "warning"}, pages...)...).CombinedOutput(); err != nil {
		t.Errorf("mandoc -Tlint: %v\n%s", err, out)
	}
	// The installed configuration checks out with the installed binary.
	conf := filepath.Join(dest, "etc/spfd.conf")
	bin := filepath.Join(dest, "usr/local/sbin/spfd")
	if out, err := exec.Command(bin, "-n", "-f", conf).CombinedOutput(); err != nil {
		t.Errorf("spfd -n on the installed configuration: %v\n%s", err, out)
	}
	// systemd-analyze checks the binaries and man pages the unit names.
	unit, _ := os.ReadFile(filepath.Join(dest, "lib/systemd/system/spfd.service"))
	staged := filepath.Join(t.TempDir(), "spfd.service")
	os.WriteFile(staged, []byte(strings.ReplaceAll(string(unit), "/usr/local/sbin/", filepath.Join(dest, "usr/local/sbin")+"/")), 0o644)
	cmd := exec.Command("systemd-analyze", "verify", staged)
	cmd.Env = append(os.Environ(), "MANPATH="+filepath.Join(dest, "usr/local/share/man"))
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command("make", "-C", "../..", "uninstall", "DESTDIR="+dest).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/local/sbin/spfd")); err == nil {
		t.Error("spfd left after make uninstall")
	}
	if _, err := os.Stat(conf); err != nil {
		t.Error("make uninstall removed the admin's configuration")
	}
}

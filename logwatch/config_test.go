package logwatch

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spfd/spfd/config"
)

// The families' options, read through spfd.conf's log statement.
func TestParseLogSources(t *testing.T) {
	src := `blacklist-ttl 12h
log sshd file "/var/log/authlog" threshold 5 within 30m allow-users { alice bob }
log sshd journal "ssh.service" ttl 2d
log httpd file { "/var/www/logs/access.log" "/var/www/logs/error.log" } probes { "/wp-admin" } probe-threshold 2 trust-proxy 127.0.0.1
log maillog file "/var/log/maillog" capture yes capture-threshold 2 within 7d capture-expire 60d \
	local-domains { example.org } spamtraps { "Trap@Example.org" }
`
	cfg, err := config.Parse("/etc/spfd.conf", strings.NewReader(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Logs) != 4 {
		t.Fatalf("%d log sources", len(cfg.Logs))
	}
	ssh, jssh, web, mail := cfg.Logs[0], cfg.Logs[1], cfg.Logs[2], cfg.Logs[3]
	sshOpts, webOpts, mailOpts := ssh.Settings.(SSHSettings), web.Settings.(HTTPSettings), MailOptions(mail)
	if ssh.Parser != "sshd" || ssh.Threshold != 5 || ssh.Window != 30*time.Minute || ssh.TTL != 12*time.Hour ||
		!slices.Equal(sshOpts.AllowUsers, []string{"alice", "bob"}) || !slices.Equal(ssh.Files, []string{"/var/log/authlog"}) {
		t.Errorf("sshd: %+v", ssh)
	}
	if jssh.Journal != "ssh.service" || jssh.TTL != 48*time.Hour || jssh.Threshold != 3 || jssh.Window != time.Hour {
		t.Errorf("journal sshd: %+v", jssh)
	}
	if web.Threshold != 20 || web.Window != 10*time.Minute || webOpts.ProbeThreshold != 2 || len(web.Files) != 2 ||
		!slices.Equal(webOpts.Probes, []string{"/wp-admin"}) || len(webOpts.TrustProxy) != 1 {
		t.Errorf("httpd: %+v", web)
	}
	if !mailOpts.Capture || mailOpts.CaptureThreshold != 2 || mailOpts.CaptureWindow != 7*24*time.Hour || mailOpts.CaptureExpire != 60*24*time.Hour ||
		!slices.Equal(mailOpts.LocalDomains, []string{"example.org"}) || !slices.Equal(mailOpts.Spamtraps, []string{"trap@example.org"}) {
		t.Errorf("maillog: %+v", mail)
	}
	def, _ := config.Parse("/etc/spfd.conf", strings.NewReader("log httpd file \"/x\"\n"), config.Options{})
	if len(def.Logs[0].Settings.(HTTPSettings).Probes) == 0 || def.Logs[0].TTL != 24*time.Hour {
		t.Errorf("httpd defaults: %+v", def.Logs[0])
	}
	for _, bad := range []struct{ src, want string }{
		{"log ftpd file \"/x\"\n", "unknown log parser \"ftpd\" (want httpd, maillog, sshd)"},
		{"log sshd \"/x\"\n", "expected file or journal"},
		{"log sshd file relative.log\n", "must be an absolute path"},
		{"log sshd file \"/x\" probes { /x }\n", "probes does not apply to sshd"},
		{"log httpd file \"/x\" threshold 5 during 1h\n", "expected within"},
		{"log maillog file \"/x\" spamtraps { nobody }\n", "invalid spamtrap"},
		{"log sshd file \"/x\" ttl 5s\n", "at least 1m"},
	} {
		if _, err := config.Parse("/etc/spfd.conf", strings.NewReader(bad.src), config.Options{}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.src, err, bad.want)
		}
	}
}

// The shipped example must parse anywhere, with missing files only warned
// about.
func TestExampleConfig(t *testing.T) {
	cfg, err := config.ParseFile(filepath.Join("..", "etc", "spfd.conf"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.CheckFiles()
	if len(cfg.Domains)+len(cfg.DomainFiles) == 0 {
		t.Error("example configures no domains")
	}
}

// Every family is known to the configuration parser through its own
// registration, options included, and only there.
func TestFamiliesRegistered(t *testing.T) {
	var names []string
	for _, f := range Families() {
		names = append(names, f.Name)
		src := config.DefaultLogSource(f.Name)
		if src.Threshold != f.Threshold || src.Window != f.Window || src.Settings == nil {
			t.Errorf("%s: defaults %+v", f.Name, src)
		}
		if f.NewParser(src) == nil || (f.Program == nil && !f.Headerless) {
			t.Errorf("%s: no parser, or no way for spfctl scan to recognise its lines", f.Name)
		}
	}
	slices.Sort(names)
	if got := config.LogFamilies(); !slices.Equal(got, names) {
		t.Errorf("config knows %v, logwatch has %v", got, names)
	}
}

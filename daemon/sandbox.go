package daemon

import (
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/spfd/spfd/config"
)

// Sandbox is OpenBSD's unveil(2) and pledge(2), behind an interface so
// the order of the calls is tested on any system.
type Sandbox interface {
	Unveil(path, perms string) error
	UnveilBlock() error
	Pledge(promises string) error
}

// Unveiled is one path and its permissions.
type Unveiled struct{ Path, Perms string }

// sandboxPlan computes what spfd needs after start-up: the configuration
// to read again on reload, the state directory, the socket's directory,
// the log and list files' directories (rotation creates new files), the
// file backend's directories and commands, and the resolver
// configuration.
func sandboxPlan(cfg *config.Config, configPath, socket string) ([]Unveiled, string) {
	perms := map[string]string{}
	add := func(path, p string) {
		if path == "" {
			return
		}
		old := perms[path]
		for _, c := range p {
			if !strings.ContainsRune(old, c) {
				old += string(c)
			}
		}
		perms[path] = old
	}
	add(filepath.Dir(configPath), "r") // the file and what it includes
	add(cfg.StateDir, "rwc")
	add(filepath.Dir(socket), "rwc")
	add("/etc/resolv.conf", "r")
	add("/dev/log", "rw") // syslog, reconnecting after a syslogd restart
	for _, files := range [][]string{cfg.DomainFiles, cfg.WhiteFiles, cfg.BlackFiles} {
		for _, f := range files {
			add(filepath.Dir(f), "r")
		}
	}
	for _, l := range cfg.Logs {
		for _, f := range l.Files {
			add(filepath.Dir(f), "r")
		}
	}
	for _, f := range cfg.Feeds {
		if f.Path != "" {
			add(filepath.Dir(f.Path), "r")
		} else {
			add("/etc/ssl", "r") // CA certificates for https feeds
		}
	}
	for _, f := range []string{cfg.ExportWhite, cfg.ExportBlack} {
		if f != "" {
			add(filepath.Dir(f), "rwc")
		}
	}
	execs := false
	for _, t := range []config.Table{cfg.White, cfg.Black} {
		if t.Backend == "file" {
			add(filepath.Dir(t.Path), "rwc")
			if len(t.Command) > 0 {
				add(t.Command[0], "x")
				execs = true
			}
		}
	}
	var out []Unveiled
	for p, pm := range perms {
		// Keep the letters in unveil's order.
		var sorted []byte
		for _, c := range "rwxc" {
			if strings.ContainsRune(pm, c) {
				sorted = append(sorted, byte(c))
			}
		}
		out = append(out, Unveiled{p, string(sorted)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })

	promises := []string{"stdio", "rpath", "wpath", "cpath", "fattr", "flock", "unix", "inet", "dns"}
	if cfg.White.Backend == "pf" {
		promises = append(promises, "pf")
	}
	if execs {
		promises = append(promises, "proc", "exec")
	}
	slices.Sort(promises)
	return out, strings.Join(promises, " ")
}

// restrict unveils what spfd needs and pledges the smallest set of
// promises. It runs after /dev/pf, the socket and the logs are open.
func restrict(sb Sandbox, cfg *config.Config, configPath, socket string) error {
	if sb == nil {
		return nil
	}
	paths, promises := sandboxPlan(cfg, configPath, socket)
	for _, u := range paths {
		if err := sb.Unveil(u.Path, u.Perms); err != nil {
			return err
		}
	}
	if err := sb.UnveilBlock(); err != nil {
		return err
	}
	return sb.Pledge(promises)
}

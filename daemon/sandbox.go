package daemon

import (
	"fmt"
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
	// The configuration and what it includes, not their directories:
	// /etc holds master.passwd and host keys, and this process parses
	// attacker text.
	add(configPath, "r")
	for _, f := range cfg.Files {
		add(f, "r")
	}
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

	// No flock: nothing locks files (the socket's liveness is checked by
	// connecting to it).
	promises := []string{"stdio", "rpath", "wpath", "cpath", "fattr", "unix", "inet", "dns"}
	if cfg.White.Backend == "pf" {
		promises = append(promises, "pf")
	}
	if execs {
		promises = append(promises, "proc", "exec")
	}
	slices.Sort(promises)
	return out, strings.Join(promises, " ")
}

// covers reports whether the sandbox applied (paths, promises) allows
// what plan needs: every path within an unveiled one with at least its
// permissions, and no new promise. A reload that needs more is refused:
// unveil and pledge can only narrow.
func covers(paths []Unveiled, promises string, plan []Unveiled, planPromises string) error {
	have := strings.Fields(promises)
	for _, p := range strings.Fields(planPromises) {
		if !slices.Contains(have, p) {
			return fmt.Errorf("pledge %q is not allowed since start", p)
		}
	}
	for _, u := range plan {
		ok := false
		for _, a := range paths {
			within := u.Path == a.Path || strings.HasPrefix(u.Path, strings.TrimSuffix(a.Path, "/")+"/")
			if within && strings.Trim(u.Perms, a.Perms) == "" {
				ok = true
				break
			}
		}
		if !ok {
			return fmt.Errorf("%s (%s) is not unveiled since start", u.Path, u.Perms)
		}
	}
	return nil
}

// restrict unveils what spfd needs and pledges the smallest set of
// promises. It runs after /dev/pf, the socket and the logs are open, and
// returns what it allowed, for reloads to be checked against.
func restrict(sb Sandbox, cfg *config.Config, configPath, socket string) (*sandboxed, error) {
	if sb == nil {
		return nil, nil
	}
	paths, promises := sandboxPlan(cfg, configPath, socket)
	for _, u := range paths {
		if err := sb.Unveil(u.Path, u.Perms); err != nil {
			return nil, err
		}
	}
	if err := sb.UnveilBlock(); err != nil {
		return nil, err
	}
	if err := sb.Pledge(promises); err != nil {
		return nil, err
	}
	return &sandboxed{paths: paths, promises: promises, configPath: configPath, socket: socket}, nil
}

// sandboxed is the sandbox in force.
type sandboxed struct {
	paths              []Unveiled
	promises           string
	configPath, socket string
}

// allows reports whether cfg can run inside the sandbox in force.
func (s *sandboxed) allows(cfg *config.Config) error {
	if s == nil {
		return nil
	}
	paths, promises := sandboxPlan(cfg, s.configPath, s.socket)
	if err := covers(s.paths, s.promises, paths, promises); err != nil {
		return fmt.Errorf("the new configuration needs more than the sandbox allows (%w): restart spfd to apply it", err)
	}
	return nil
}

// Command spfd keeps firewall tables of the networks that may send mail
// (from SPF records) and of the addresses that misbehave (from logs).

// Plain TCP, not Go's default Multipath TCP for listeners: TCP-MD5 (BGP
// neighbor passwords) cannot be set on an MPTCP socket. The BGP speaker
// asks for plain TCP on its own sockets; this keeps it so for any socket
// a later change adds.
//
//go:debug multipathtcp=0
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/daemon"
	"github.com/spfd/spfd/internal/sdnotify"
)

const defaultConfig = "/etc/spfd.conf"

type macroFlags map[string]string

func (m macroFlags) String() string { return "" }
func (m macroFlags) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", v)
	}
	m[name] = value
	return nil
}

func main() {
	os.Exit(run())
}

func run() int {
	fs := flag.NewFlagSet("spfd", flag.ContinueOnError)
	foreground := fs.Bool("d", false, "stay in the foreground and log to standard error")
	configPath := fs.String("f", defaultConfig, "configuration `file`")
	checkOnly := fs.Bool("n", false, "check the configuration and exit")
	verbose := fs.Bool("v", false, "verbose logging")
	socket := fs.String("s", "", "control socket `path` (overrides the configuration)")
	macros := macroFlags{}
	fs.Var(macros, "D", "define a macro: `name=value`")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: spfd [-dnv] [-D name=value] [-f file] [-s socket]")
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2 // the flag package has printed the usage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}

	if *checkOnly {
		cfg, err := config.ParseFile(*configPath, config.Options{Macros: macros})
		if err != nil {
			fmt.Fprintf(os.Stderr, "spfd: %v\n", err)
			return 1
		}
		cfg.CheckFiles()
		warnings, err := daemon.CheckLists(cfg)
		for _, w := range append(cfg.Warnings, warnings...) {
			fmt.Fprintf(os.Stderr, "spfd: warning: %s\n", w)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "spfd: %v\n", err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "configuration OK")
		return 0
	}

	logger := log.With(log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr)), "ts", log.DefaultTimestampUTC)
	if !*foreground {
		// syslog stamps the time itself.
		if l, err := newSyslogLogger(); err == nil {
			logger = l
		}
	}

	d, err := daemon.New(daemon.Options{
		ConfigPath: *configPath,
		Macros:     macros,
		Logger:     logger,
		Verbose:    *verbose,
		SocketPath: *socket,
		Sandbox:    daemon.DefaultSandbox(),
		Notify: func(state string) {
			if err := sdnotify.Notify(state); err != nil {
				level.Warn(logger).Log("err", err)
			}
		},
	})
	if err != nil {
		level.Error(logger).Log("msg", "cannot start", "err", err)
		fmt.Fprintf(os.Stderr, "spfd: %v\n", err)
		return 1
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			sdnotify.Notify(sdnotify.Reloading())
			// A failure is logged by the daemon and kept for show status.
			_ = d.Reload()
			sdnotify.Notify("READY=1")
		}
	}()
	if err := d.Run(ctx); err != nil {
		level.Error(logger).Log("err", err)
		fmt.Fprintf(os.Stderr, "spfd: %v\n", err)
		return 1
	}
	return 0
}

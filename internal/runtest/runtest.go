// Package runtest runs programs for tests: a command's output and exit
// status, and a test binary re-executed in private namespaces.
package runtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
)

// Output runs cmd and returns what it wrote and its exit status (-1 when
// a signal ended it); err is set only when it could not run.
func Output(cmd *exec.Cmd) (stdout, stderr string, code int, err error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode(), nil
	}
	return o.String(), e.String(), 0, err
}

// Unshare re-executes the running test binary as root under unshare(1)
// with flags (such as -n), marking the child with env=1, and returns the
// child's exit code and true. It returns false without running anything
// when not root, when already in the child, or when unshare is missing:
// the caller then runs the tests itself.
func Unshare(env string, flags ...string) (int, bool) {
	if os.Getuid() != 0 || os.Getenv(env) != "" {
		return 0, false
	}
	path, err := exec.LookPath("unshare")
	if err != nil {
		return 0, false
	}
	cmd := exec.Command(path, slices.Concat(flags, os.Args)...)
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), true
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1, true
	}
	return 0, true
}

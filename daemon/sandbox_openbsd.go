package daemon

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// OpenBSDSandbox calls unveil(2) and pledge(2).
type OpenBSDSandbox struct{}

// Unveil implements Sandbox; a path that does not exist yet is skipped.
func (OpenBSDSandbox) Unveil(path, perms string) error {
	if err := unix.Unveil(path, perms); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unveil %s %s: %w", path, perms, err)
	}
	return nil
}

// UnveilBlock implements Sandbox.
func (OpenBSDSandbox) UnveilBlock() error { return unix.UnveilBlock() }

// Pledge implements Sandbox.
func (OpenBSDSandbox) Pledge(promises string) error {
	if err := unix.PledgePromises(promises); err != nil {
		return fmt.Errorf("pledge %q: %w", promises, err)
	}
	return nil
}

// DefaultSandbox is the system's sandbox.
func DefaultSandbox() Sandbox { return OpenBSDSandbox{} }

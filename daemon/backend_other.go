//go:build !linux && !openbsd

package daemon

import (
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/pftable"
)

func newKernelBackend(cfg *config.Config) (pftable.Backend, error) {
	return nil, errUnavailable(cfg.White.Backend)
}

// reconfigureKernelBackend: pf's handle serves any table names (its key
// never changes), so there is nothing to apply in place.
func (d *Daemon) reconfigureKernelBackend(pftable.Backend, *config.Config) bool { return false }

//go:build !linux && !openbsd

package daemon

import (
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/pftable"
)

func newKernelBackend(cfg *config.Config) (pftable.Backend, error) {
	return nil, errUnavailable(cfg.White.Backend)
}

package daemon

import (
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/pftable"
)

func newKernelBackend(cfg *config.Config) (pftable.Backend, error) {
	switch cfg.White.Backend {
	case "nftables":
		return pftable.NewNFTables(cfg.NFTable)
	}
	return nil, errUnavailable(cfg.White.Backend)
}

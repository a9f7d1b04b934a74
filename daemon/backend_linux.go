package daemon

import (
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/pftable"
)

func newKernelBackend(cfg *config.Config) (pftable.Backend, error) {
	switch cfg.White.Backend {
	case "nftables":
		n, err := pftable.NewNFTables(cfg.NFTable)
		if err != nil {
			return nil, err
		}
		n.Ports, n.WhiteList, n.BlackList = cfg.NFTRulePorts, cfg.White.Name, cfg.Black.Name
		n.ElementCounters = cfg.NFTElementCounters
		return n, nil
	}
	return nil, errUnavailable(cfg.White.Backend)
}

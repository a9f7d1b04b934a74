package daemon

import (
	"github.com/spfd/spfd/config"
	"github.com/spfd/spfd/pftable"
)

// reconfigureKernelBackend applies cfg to an nftables backend of the same
// table in place: a second handle on the table would be refused (one
// owner per namespace), and the first is still in use.
func (d *Daemon) reconfigureKernelBackend(b pftable.Backend, cfg *config.Config) bool {
	n, ok := b.(*pftable.NFTables)
	if !ok || cfg.White.Backend != "nftables" || n.Table != cfg.NFTable && !(n.Table == "spfd" && cfg.NFTable == "") {
		return false
	}
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	n.Ports, n.WhiteList, n.BlackList = cfg.NFTRulePorts, cfg.White.Name, cfg.Black.Name
	n.ElementCounters = cfg.NFTElementCounters
	return true
}

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

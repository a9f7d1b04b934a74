package pftable

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The managed chain: when spfd is told to manage rules, it keeps a base
// chain "input" in its own table, hooked before the usual filter
// (priority -10), which accepts mail from the whitelist and drops the
// blacklist on the configured ports. Each list, port and set has two
// rules with a counter and the same verdict: the first takes the SYNs
// (new connections, as against the segments of one), the second the
// rest. The SYN rule matches the flags before it looks the address up,
// so every packet makes one lookup and element counters count packets.

// ruleSpec is one managed rule: list, set index (0-3), port, verdict,
// and whether it takes the SYNs.
type ruleSpec struct {
	list   string
	set    int
	port   uint16
	accept bool
	syn    bool
}

func (n *NFTables) ruleSpecs() []ruleSpec {
	var out []ruleSpec
	for _, list := range []string{n.WhiteList, n.BlackList} {
		if list == "" {
			continue
		}
		for _, port := range n.Ports {
			for set := range 4 {
				accept := list == n.WhiteList
				out = append(out,
					ruleSpec{list: list, set: set, port: port, accept: accept, syn: true},
					ruleSpec{list: list, set: set, port: port, accept: accept})
			}
		}
	}
	return out
}

// synFlags is the offset of the TCP flags byte, and SYN and ACK in it.
const (
	tcpFlagsOffset = 13
	tcpSYN         = 0x02
	tcpACK         = 0x10
)

// ruleExprs builds: meta nfproto ipv4|ipv6, meta l4proto tcp, th dport
// PORT, [tcp flags & (syn|ack) == syn,] ip[6] saddr @SET, counter,
// accept|drop.
func ruleExprs(set *nftables.Set, v6 bool, port uint16, accept, syn bool) []expr.Any {
	proto, off, length := byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if v6 {
		proto, off, length = byte(unix.NFPROTO_IPV6), 8, 16
	}
	portBytes := make([]byte, 2)
	binary.BigEndian.PutUint16(portBytes, port)
	verdict := expr.VerdictDrop
	if accept {
		verdict = expr.VerdictAccept
	}
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: portBytes},
	}
	if syn {
		exprs = append(exprs,
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: tcpFlagsOffset, Len: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{tcpSYN | tcpACK}, Xor: []byte{0}},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{tcpSYN}})
	}
	return append(exprs,
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: length},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Counter{},
		&expr.Verdict{Kind: verdict})
}

func (n *NFTables) chain() *nftables.Chain {
	return &nftables.Chain{Name: "input", Table: n.table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityRef(-10)}
}

// ensureRules makes the managed chain hold exactly its rules, once both
// lists' sets exist. Rules are placed whitelist first.
func (n *NFTables) ensureRules() error {
	if len(n.Ports) == 0 || n.WhiteList == "" || n.BlackList == "" {
		return nil
	}
	white, black := n.lists[n.WhiteList], n.lists[n.BlackList]
	if white == nil || black == nil || white.sets[0] == nil || black.sets[0] == nil {
		return nil // the other list's first sync creates them
	}
	specs := n.ruleSpecs()
	chains, err := n.conn.ListChainsOfTableFamily(n.table.Family)
	if err != nil {
		return fmt.Errorf("listing chains: %w", err)
	}
	ch := n.chain()
	if slices.ContainsFunc(chains, func(c *nftables.Chain) bool { return c.Table.Name == n.table.Name && c.Name == ch.Name }) {
		rules, err := n.conn.GetRules(n.table, ch)
		if err != nil {
			return fmt.Errorf("listing rules: %w", err)
		}
		if len(rules) == len(specs) {
			return nil
		}
		n.conn.FlushChain(ch) // not ours as it stands: rebuild it
		n.repairs["rules"]++
	} else {
		n.conn.AddChain(ch)
	}
	for _, s := range specs {
		set := n.lists[s.list].sets[s.set]
		n.conn.AddRule(&nftables.Rule{Table: n.table, Chain: ch, Exprs: ruleExprs(set, s.set%2 == 1, s.port, s.accept, s.syn)})
	}
	if err := n.conn.Flush(); err != nil {
		return fmt.Errorf("adding the managed chain: %w", err)
	}
	return nil
}

// ruleCounters sums the counters of every rule in spfd's table that
// looks an address up in one of list's sets: the managed chain's, or the
// admin's own rules in the table (with a counter statement). What a rule
// that matches TCP flags counted (the managed SYN rules) are also
// connections. ok is false when no rule counts.
func (n *NFTables) ruleCounters(list string) (st Stats, ok bool, err error) {
	chains, err := n.conn.ListChainsOfTableFamily(n.table.Family)
	if err != nil {
		return st, false, err
	}
	names := setNames(list)
	for _, ch := range chains {
		if ch.Table.Name != n.table.Name {
			continue
		}
		rules, err := n.conn.GetRules(n.table, ch)
		if err != nil {
			return st, false, err
		}
		for _, r := range rules {
			var lookup *expr.Lookup
			var counter *expr.Counter
			flags := false
			for _, e := range r.Exprs {
				switch e := e.(type) {
				case *expr.Lookup:
					lookup = e
				case *expr.Counter:
					counter = e
				case *expr.Payload:
					flags = flags || (e.Base == expr.PayloadBaseTransportHeader && e.Offset == tcpFlagsOffset)
				}
			}
			if lookup == nil || counter == nil || !slices.Contains(names[:], lookup.SetName) {
				continue
			}
			if flags {
				st.Connections += counter.Packets
			}
			st.Packets += counter.Packets
			st.Bytes += counter.Bytes
			ok = true
		}
	}
	return st, ok, nil
}

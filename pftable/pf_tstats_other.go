//go:build !arm

package pftable

// pfrTstats is struct pfr_tstats (OpenBSD 6.x and later: four table ops,
// block, match, pass, xpass).
type pfrTstats struct {
	Table   pfrTable
	Packets [2][4]uint64
	Bytes   [2][4]uint64
	Match   uint64
	Nomatch uint64
	Tzero   int64 // time_t
	Cnt     int32
	Refcnt  [2]int32
}

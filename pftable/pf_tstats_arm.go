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
	// ARM EABI aligns the 64-bit counters to 8, so the C struct ends
	// padded to 1232 bytes; Go on GOARCH=arm aligns them to 4 and would
	// make it 1228, and the kernel answers a wrong size with ENODEV. (A
	// zero-size last field would pad on every 32-bit architecture, so
	// this struct has a file of its own.)
	_ [4]byte
}

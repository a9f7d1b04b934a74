package pftable

import (
	"net/netip"

	"github.com/spfd/spfd/prefixset"
)

// setOf is a set of the prefixes given, for the tests of every backend
// (this file has no build constraint, so GOOS=openbsd vets it too).
func setOf(ss ...string) *prefixset.Set {
	var b prefixset.Builder
	for _, s := range ss {
		b.Add(netip.MustParsePrefix(s))
	}
	return b.Set()
}

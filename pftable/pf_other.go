//go:build !openbsd

package pftable

// Close implements Backend; elsewhere the PF backend only runs against a
// fake device in tests.
func (p *PF) Close() error { return nil }

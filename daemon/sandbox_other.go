//go:build !openbsd

package daemon

// DefaultSandbox is nil where there is no unveil or pledge.
func DefaultSandbox() Sandbox { return nil }

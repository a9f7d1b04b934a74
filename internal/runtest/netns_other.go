//go:build !linux

package runtest

import "errors"

// DialFromNetns needs Linux's network namespaces; the tests that call it
// run there.
func DialFromNetns(nsPath, local, remote string) error {
	return errors.New("network namespaces are Linux's")
}

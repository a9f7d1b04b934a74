//go:build !linux && !openbsd

package control

import (
	"errors"
	"net"
)

// peerUID is not implemented here: state-changing commands are refused.
func peerUID(*net.UnixConn) (int, error) {
	return -1, errors.New("peer credentials not supported on this system")
}

package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// DefaultSocket is where spfd listens unless configured otherwise.
const DefaultSocket = "/var/run/spfd.sock"

// Do sends one command to the daemon at path and copies the answer to out.
func Do(ctx context.Context, path string, req Request, out io.Writer) error {
	req.Version = Version
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return fmt.Errorf("connecting to spfd at %s: %w", path, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	werr := writeJSONLine(conn, req)
	conn.SetWriteDeadline(time.Time{})
	r := bufio.NewReaderSize(conn, 64<<10)
	// Even when sending failed, the daemon may have answered (busy).
	resp, err := ReadResponse(r)
	switch {
	case err != nil && werr != nil:
		return fmt.Errorf("sending request: %w", werr)
	case err != nil:
		return fmt.Errorf("reading answer: %w", err)
	}
	if !resp.OK {
		if resp.Error == "" {
			return errors.New("spfd refused the request")
		}
		return errors.New(resp.Error)
	}
	return copyOutput(out, r)
}

// copyOutput copies the answer to out up to a trailer, if any, and
// returns the trailer's error.
func copyOutput(out io.Writer, r *bufio.Reader) error {
	for {
		chunk, err := r.ReadSlice(trailerMark)
		if errors.Is(err, bufio.ErrBufferFull) {
			if _, werr := out.Write(chunk); werr != nil {
				return werr
			}
			continue
		}
		if err == io.EOF {
			_, werr := out.Write(chunk)
			return werr
		}
		if err != nil {
			return fmt.Errorf("reading answer: %w", err)
		}
		if _, werr := out.Write(chunk[:len(chunk)-1]); werr != nil {
			return werr
		}
		resp, err := ReadResponse(r)
		if err != nil {
			return fmt.Errorf("reading answer: %w", err)
		}
		if resp.Error == "" {
			return errors.New("spfd reported a failure")
		}
		return errors.New(resp.Error)
	}
}

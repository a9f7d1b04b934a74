package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version. A request carries it; a daemon that
// speaks another answers with an error naming its own.
const Version = 1

// trailerMark starts a trailer after the output: a Response line that
// reports a failure found after the output began (a walk that failed).
// Output is text, which never holds a NUL byte.
const trailerMark = 0

// MaxRequest bounds a request line.
const MaxRequest = 64 << 10

// Request is one command sent to the daemon: a JSON object on one line.
type Request struct {
	Version int      `json:"v"`
	Args    []string `json:"args"`
	Verbose bool     `json:"verbose,omitempty"`
	JSON    bool     `json:"json,omitempty"`
}

// Response heads the daemon's answer: a JSON object on one line, then, when
// OK, the output as plain text (or JSON) until the connection closes.
type Response struct {
	Version int    `json:"v"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// ReadRequest reads and checks one request line; it parses the command
// too, so nothing malformed reaches a handler.
func ReadRequest(r *bufio.Reader) (Request, Command, error) {
	line, err := readLine(r, MaxRequest)
	if err != nil {
		return Request{}, Command{}, err
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, Command{}, fmt.Errorf("malformed request: %v", err)
	}
	if req.Version != Version {
		return req, Command{}, fmt.Errorf("protocol version %d not supported (spfd speaks %d)", req.Version, Version)
	}
	cmd, err := Parse(req.Args)
	if err != nil {
		return req, Command{}, err
	}
	return req, cmd, nil
}

// ReadResponse reads the response header line.
func ReadResponse(r *bufio.Reader) (Response, error) {
	line, err := readLine(r, MaxRequest)
	if err != nil {
		return Response{}, err
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return Response{}, fmt.Errorf("malformed response: %v", err)
	}
	return resp, nil
}

var errTooLong = errors.New("line too long")

func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, errTooLong
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

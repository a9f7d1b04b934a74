package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// Handler runs one command and writes its output to w. An error before
// anything is written becomes the error reply.
type Handler func(ctx context.Context, req Request, cmd Command, w io.Writer) error

// Server answers spfctl on a unix socket.
type Server struct {
	Path    string
	Mode    os.FileMode
	GID     int // group owning the socket, -1 to leave it
	Handler Handler
	// Privileged decides which peer users may run commands that change
	// state (root and the daemon's own user), and which may use the slots
	// kept for them. It is asked once per connection, when it is accepted.
	Privileged func(uid int) bool
	// MaxClients bounds concurrent connections; more get a busy reply.
	MaxClients int
	// Logf reports connection problems.
	Logf func(format string, args ...any)

	ln net.Listener
}

// Timeouts on the socket: a client must send its request quickly and keep
// reading the answer.
const (
	requestTimeout = 5 * time.Second
	writeTimeout   = 30 * time.Second
)

// ErrRunning means another daemon answers on the socket.
var ErrRunning = errors.New("another spfd is running")

// Listen creates the socket, refusing when another daemon answers on it
// and replacing a stale one.
func (s *Server) Listen() error {
	if c, err := net.DialTimeout("unix", s.Path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: %w", s.Path, ErrRunning)
	}
	if fi, err := os.Lstat(s.Path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%s exists and is not a socket", s.Path)
		}
		if err := os.Remove(s.Path); err != nil {
			return err
		}
	}
	ln, err := net.Listen("unix", s.Path)
	if err != nil {
		return err
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	mode := s.Mode
	if mode == 0 {
		mode = 0o660
	}
	if err := os.Chmod(s.Path, mode); err != nil {
		ln.Close()
		return err
	}
	if s.GID >= 0 {
		if err := os.Chown(s.Path, -1, s.GID); err != nil {
			ln.Close()
			return err
		}
	}
	s.ln = ln
	return nil
}

// Serve accepts connections until ctx ends, then closes the socket and
// waits for the connections being served.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	maxClients := s.MaxClients
	if maxClients <= 0 {
		maxClients = 64
	}
	adm := newAdmission(maxClients)
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { s.ln.Close() })
	defer stop()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			wg.Wait()
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		p := s.peerOf(conn.(*net.UnixConn))
		release, ok := adm.admit(p.uid, p.privileged)
		if !ok {
			conn.SetWriteDeadline(time.Now().Add(time.Second))
			writeJSONLine(conn, Response{Version: Version, Error: "busy: too many clients"})
			conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The slot is free before the client sees the end of the
			// answer, so a script's next spfctl never finds it taken.
			defer conn.Close()
			defer release()
			s.serveConn(ctx, conn.(*net.UnixConn), p)
		}()
	}
}

// admission shares the connection slots so that the socket's group
// cannot lock root out: a quarter of the slots is kept for privileged
// peers (root and spfd's user), and one user who is not privileged holds
// at most perUIDMax of the rest.
type admission struct {
	mu                 sync.Mutex
	max, reserved      int
	perUIDMax          int
	total, unprivTotal int
	perUID             map[int]int
}

func newAdmission(slots int) *admission {
	reserved := max(1, slots/4)
	return &admission{max: slots, reserved: reserved, perUIDMax: max(1, (slots-reserved)/4), perUID: make(map[int]int)}
}

// admit takes a slot for a peer, or says no; release gives it back.
func (a *admission) admit(uid int, privileged bool) (release func(), ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.total >= a.max {
		return nil, false
	}
	if !privileged && (a.unprivTotal >= a.max-a.reserved || a.perUID[uid] >= a.perUIDMax) {
		return nil, false
	}
	a.total++
	if !privileged {
		a.unprivTotal++
		a.perUID[uid]++
	}
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.total--
		if !privileged {
			a.unprivTotal--
			if a.perUID[uid]--; a.perUID[uid] == 0 {
				delete(a.perUID, uid)
			}
		}
	}, true
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// peer is who is on the other end of a connection, read once at accept.
type peer struct {
	uid        int // -1 when unknown
	credErr    error
	privileged bool
}

func (s *Server) peerOf(conn *net.UnixConn) peer {
	uid, err := peerUID(conn)
	if err != nil {
		return peer{uid: -1, credErr: err} // unknown: the least trusted
	}
	return peer{uid: uid, privileged: s.Privileged != nil && s.Privileged(uid)}
}

type privilegedKey struct{}

// Privileged reports whether the request a Handler answers comes from a
// peer that may change state (root or spfd's user).
func Privileged(ctx context.Context) bool {
	v, _ := ctx.Value(privilegedKey{}).(bool)
	return v
}

// serveConn answers one request from p; the caller closes conn.
func (s *Server) serveConn(ctx context.Context, conn *net.UnixConn, p peer) {
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	conn.SetReadDeadline(time.Now().Add(requestTimeout))
	req, cmd, err := ReadRequest(bufio.NewReaderSize(conn, 4096))
	w := &deadlineWriter{conn: conn}
	if err != nil {
		writeJSONLine(w, Response{Version: Version, Error: err.Error()})
		return
	}
	if cmd.Mutates {
		if p.credErr != nil {
			s.logf("control: peer credentials: %v", p.credErr)
			writeJSONLine(w, Response{Version: Version, Error: "cannot check peer credentials"})
			return
		}
		if !p.privileged {
			writeJSONLine(w, Response{Version: Version, Error: fmt.Sprintf("permission denied: %q changes state; run it as root or as spfd's user", cmd.Name)})
			return
		}
	}
	bw := &headedWriter{w: bufio.NewWriterSize(w, 32<<10)}
	if err := s.Handler(context.WithValue(ctx, privilegedKey{}, p.privileged), req, cmd, bw); err != nil {
		if !bw.started {
			writeJSONLine(w, Response{Version: Version, Error: err.Error()})
			return
		}
		// The output is out: the failure follows it as a trailer, so the
		// client still exits 1.
		s.logf("control: %s: %v", cmd.Name, err)
		bw.w.WriteByte(trailerMark)
		writeJSONLine(bw.w, Response{Version: Version, Error: err.Error()})
	}
	if !bw.started {
		bw.Write(nil) // send the OK header for an empty answer
	}
	bw.w.Flush()
}

// headedWriter sends the OK header before the first output byte.
type headedWriter struct {
	w       *bufio.Writer
	started bool
}

func (h *headedWriter) Write(p []byte) (int, error) {
	if !h.started {
		h.started = true
		if err := writeJSONLine(h.w, Response{Version: Version, OK: true}); err != nil {
			return 0, err
		}
	}
	return h.w.Write(p)
}

// deadlineWriter gives every write its own deadline, so a client that
// stops reading is dropped without stalling the daemon.
type deadlineWriter struct{ conn net.Conn }

func (d *deadlineWriter) Write(p []byte) (int, error) {
	d.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.conn.Write(p)
}

package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		want Command
		err  string
	}{
		{args: []string{"show", "whitelist"}, want: Command{Name: "show whitelist"}},
		{args: []string{"sh", "wh"}, want: Command{Name: "show whitelist"}},
		{args: []string{"s", "b"}, want: Command{Name: "show blacklist"}},
		{args: []string{"show", "sta"}, err: `ambiguous "sta": stats, status`},
		{args: []string{"show", "statu"}, want: Command{Name: "show status"}},
		{args: []string{"show"}, err: "incomplete command"},
		{args: []string{"show", "nothing"}, err: `unknown command "show nothing"`},
		{args: []string{"add", "white", "192.0.2.0/24"}, want: Command{Name: "add", List: "white", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Mutates: true}},
		{args: []string{"a", "b", "2001:db8::1", "ttl", "1h"}, want: Command{Name: "add", List: "black", Prefix: netip.MustParsePrefix("2001:db8::1/128"), TTL: time.Hour, Mutates: true}},
		{args: []string{"add", "black", "0.0.0.0/0", "force"}, want: Command{Name: "add", List: "black", Prefix: netip.MustParsePrefix("0.0.0.0/0"), Force: true, Mutates: true}},
		{args: []string{"add", "white", "::/0", "ttl", "1h", "force"}, want: Command{Name: "add", List: "white", Prefix: netip.MustParsePrefix("::/0"), TTL: time.Hour, Force: true, Mutates: true}},
		{args: []string{"add", "white", "::/0", "force", "ttl", "1h"}, err: `unexpected "ttl 1h"`},
		{args: []string{"add", "grey", "192.0.2.1"}, err: "want white or black"},
		{args: []string{"add", "white", "192.0.2.1/24"}, err: "host bits set"},
		{args: []string{"add", "white"}, err: "want an address or prefix"},
		{args: []string{"add", "white", "192.0.2.1", "ttl"}, err: "want ttl DURATION"},
		{args: []string{"add", "white", "192.0.2.1", "ttl", "forever"}, err: "invalid duration"},
		{args: []string{"add", "white", "192.0.2.1", "ttl", "0s"}, err: "leave ttl out for an entry without expiry"},
		{args: []string{"add", "white", "192.0.2.1", "extra", "words"}, err: "want ttl DURATION"},
		{args: []string{"delete", "black", "203.0.113.0/24"}, want: Command{Name: "delete", List: "black", Prefix: netip.MustParsePrefix("203.0.113.0/24"), Mutates: true}},
		{args: []string{"d"}, err: `ambiguous "d": delete, domain`},
		{args: []string{"expire"}, want: Command{Name: "expire", Mutates: true}},
		{args: []string{"ex", "192.0.2.7"}, want: Command{Name: "expire", Prefix: netip.MustParsePrefix("192.0.2.7/32"), Mutates: true}},
		{args: []string{"domain", "add", "Example.COM."}, want: Command{Name: "domain add", Domain: "example.com", Mutates: true}},
		{args: []string{"dom", "del", "example.com"}, want: Command{Name: "domain delete", Domain: "example.com", Mutates: true}},
		{args: []string{"domain", "add", "bad..name"}, err: "invalid domain"},
		{args: []string{"domain", "add"}, err: "want a domain name"},
		{args: []string{"rewalk"}, want: Command{Name: "rewalk", Mutates: true}},
		{args: []string{"rew", "gmail.com"}, want: Command{Name: "rewalk", Domain: "gmail.com", Mutates: true}},
		{args: []string{"r"}, err: "ambiguous"},
		{args: []string{"reload"}, want: Command{Name: "reload", Mutates: true}},
		{args: []string{"reload", "now"}, err: `unexpected "now"`},
		{args: []string{"log", "v"}, want: Command{Name: "log verbose", Mutates: true}},
		{args: []string{"log", "brief"}, want: Command{Name: "log brief", Mutates: true}},
		{args: nil, err: "no command"},
		{args: []string{""}, err: "unknown command"},
		{args: strings.Fields(strings.Repeat("x ", 20)), err: "too many"},
	}
	for _, tt := range tests {
		got, err := Parse(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q): error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
			continue
		}
		// The canonical words parse back to the same command.
		again, err := Parse(got.Words())
		if err != nil || again != got {
			t.Errorf("Parse(Words(%+v)) = %+v, %v", got, again, err)
		}
	}
}

// Every entry of the command table is reachable by its full words.
func TestCommandTableComplete(t *testing.T) {
	for _, s := range specs {
		args := append([]string(nil), s.words...)
		for _, k := range s.args {
			switch k {
			case argList:
				args = append(args, "white")
			case argPrefix:
				args = append(args, "192.0.2.1")
			case argDomain:
				args = append(args, "example.com")
			}
		}
		c, err := Parse(args)
		if err != nil || c.Name != strings.Join(s.words, " ") || c.Mutates != s.mutates {
			t.Errorf("%q: %+v %v", args, c, err)
		}
	}
}

func startServer(t *testing.T, h Handler, privileged func(int) bool) (string, context.CancelFunc, chan error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "spfd.sock")
	srv := &Server{Path: path, GID: -1, Handler: h, Privileged: privileged, MaxClients: 8}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("server did not stop")
		}
	})
	return path, cancel, done
}

func echoHandler(_ context.Context, req Request, cmd Command, w io.Writer) error {
	if cmd.Name == "reload" {
		return errors.New("reload failed: bad config")
	}
	fmt.Fprintf(w, "%s verbose=%v\n", strings.Join(cmd.Words(), " "), req.Verbose)
	return nil
}

func TestServerRoundTrip(t *testing.T) {
	path, _, _ := startServer(t, echoHandler, func(int) bool { return true })
	var out bytes.Buffer
	if err := Do(context.Background(), path, Request{Args: []string{"sh", "wh"}, Verbose: true}, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != "show whitelist verbose=true\n" {
		t.Errorf("output %q", out.String())
	}
	err := Do(context.Background(), path, Request{Args: []string{"reload"}}, &out)
	if err == nil || err.Error() != "reload failed: bad config" {
		t.Errorf("handler error: %v", err)
	}
	err = Do(context.Background(), path, Request{Args: []string{"frobnicate"}}, &out)
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("unknown command: %v", err)
	}
}

func TestServerChecksPeerCredentials(t *testing.T) {
	var gotUID atomic.Int64
	path, _, _ := startServer(t, echoHandler, func(uid int) bool { gotUID.Store(int64(uid)); return false })
	var out bytes.Buffer
	err := Do(context.Background(), path, Request{Args: []string{"add", "black", "192.0.2.1"}}, &out)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("mutating command by an unprivileged peer: %v", err)
	}
	if got := int(gotUID.Load()); got != os.Getuid() {
		t.Errorf("peer uid %d, want %d", got, os.Getuid())
	}
	// Read-only commands need no privilege.
	if err := Do(context.Background(), path, Request{Args: []string{"show", "status"}}, &out); err != nil {
		t.Errorf("read-only command: %v", err)
	}
}

func rawExchange(t *testing.T, path string, send []byte) Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(send)
	resp, err := ReadResponse(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("%q: %v", send, err)
	}
	return resp
}

func TestServerRejectsMalformedRequests(t *testing.T) {
	path, _, _ := startServer(t, echoHandler, func(int) bool { return true })
	tests := []struct {
		send []byte
		want string
	}{
		{[]byte("not json\n"), "malformed request"},
		{[]byte(`{"v":99,"args":["show","status"]}` + "\n"), "protocol version 99"},
		{[]byte(`{"v":1,"args":"show"}` + "\n"), "malformed request"},
		{[]byte(`{"v":1,"args":[]}` + "\n"), "no command"},
		{append(bytes.Repeat([]byte("x"), MaxRequest+10), '\n'), "line too long"},
	}
	for _, tt := range tests {
		resp := rawExchange(t, path, tt.send)
		if resp.OK || !strings.Contains(resp.Error, tt.want) {
			t.Errorf("%.40q: %+v, want error %q", tt.send, resp, tt.want)
		}
	}
}

func TestServerManyClients(t *testing.T) {
	release := make(chan struct{})
	slow := func(ctx context.Context, req Request, cmd Command, w io.Writer) error {
		if cmd.Name == "show domains" {
			<-release
		}
		return echoHandler(ctx, req, cmd, w)
	}
	path, _, _ := startServer(t, slow, func(int) bool { return true })
	// Hold some slots with slow clients; others still get answers.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			Do(context.Background(), path, Request{Args: []string{"show", "domains"}}, io.Discard)
		}()
	}
	time.Sleep(100 * time.Millisecond)
	var fails sync.Map
	var wg2 sync.WaitGroup
	for i := range 32 {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			var out bytes.Buffer
			if err := Do(context.Background(), path, Request{Args: []string{"show", "status"}}, &out); err != nil && !strings.Contains(err.Error(), "busy") {
				fails.Store(i, err)
			}
		}()
	}
	wg2.Wait()
	close(release)
	wg.Wait()
	fails.Range(func(k, v any) bool { t.Errorf("client %v: %v", k, v); return true })
}

func TestListenRefusesSecondInstance(t *testing.T) {
	path, _, _ := startServer(t, echoHandler, nil)
	srv := &Server{Path: path, GID: -1, Handler: echoHandler}
	if err := srv.Listen(); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Listen: %v, want ErrRunning", err)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spfd.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the socket file behind, as after kill -9
	srv := &Server{Path: path, GID: -1, Handler: echoHandler, Mode: 0o660}
	if err := srv.Listen(); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer srv.ln.Close()
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v", fi.Mode(), err)
	}
	notSock := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notSock, nil, 0o600)
	if err := (&Server{Path: notSock, GID: -1}).Listen(); err == nil {
		t.Fatal("Listen over a regular file succeeded")
	}
}

func FuzzReadRequest(f *testing.F) {
	f.Add([]byte(`{"v":1,"args":["show","whitelist"],"verbose":true}` + "\n"))
	f.Add([]byte(`{"v":1,"args":["add","black","192.0.2.1","ttl","1h"]}` + "\n"))
	f.Add([]byte(`{"v":1,"args":["domain","add","example.com"]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, cmd, err := ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		if req.Version != Version || cmd.Name == "" {
			t.Fatalf("accepted %+v %+v", req, cmd)
		}
		again, err := Parse(cmd.Words())
		if err != nil || !reflect.DeepEqual(again, cmd) {
			t.Fatalf("canonical form of %+v does not parse back: %+v %v", cmd, again, err)
		}
	})
}

// A failure found after the output began still reaches the client, after
// all of the output, so spfctl can exit 1 (spfctl rewalk, domain add).
func TestServerFailureAfterOutput(t *testing.T) {
	big := strings.Repeat("x", 100<<10) + "\n"
	h := func(_ context.Context, _ Request, cmd Command, w io.Writer) error {
		fmt.Fprint(w, "example.com\ttemporary-failure\t0 networks\n", big)
		if cmd.Domain == "fail.example" {
			return errors.New("walk failed for fail.example")
		}
		return nil
	}
	path, _, _ := startServer(t, h, func(int) bool { return true })
	for _, tt := range []struct {
		domain, err string
	}{{"fail.example", "walk failed for fail.example"}, {"ok.example", ""}} {
		var out bytes.Buffer
		err := Do(context.Background(), path, Request{Args: []string{"rewalk", tt.domain}}, &out)
		if got := fmt.Sprint(err); (tt.err == "" && err != nil) || (tt.err != "" && got != tt.err) {
			t.Errorf("%s: error %v, want %q", tt.domain, err, tt.err)
		}
		if want := "example.com\ttemporary-failure\t0 networks\n" + big; out.String() != want {
			t.Errorf("%s: output of %d bytes, want %d", tt.domain, out.Len(), len(want))
		}
	}
}

// Idle connections of a user who is not privileged (a member of the
// socket's group) cannot take every slot: that user is held to its share,
// and root still gets in.
func TestIdleClientsCannotLockRootOut(t *testing.T) {
	var privileged atomic.Bool
	path, _, _ := startServer(t, echoHandler, func(int) bool { return privileged.Load() })
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	busy := 0
	for range 8 {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
		// A refused connection is answered at once with "busy"; an
		// admitted one waits for its request.
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if line, _ := bufio.NewReader(c).ReadString('\n'); strings.Contains(line, "busy") {
			busy++
		}
	}
	// MaxClients 8: 2 kept for privileged peers, 1 for each other user.
	if busy != 7 {
		t.Errorf("%d of 8 idle connections of one unprivileged user refused, want 7", busy)
	}
	privileged.Store(true)
	var out bytes.Buffer
	if err := Do(context.Background(), path, Request{Args: []string{"add", "black", "192.0.2.1"}}, &out); err != nil {
		t.Errorf("root locked out: %v", err)
	}
}

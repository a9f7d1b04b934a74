package feed

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

const list = "# a spamd-setup list\n192.0.2.1\n198.51.100.0/24\nnot an address\n203.0.113.0 - 203.0.113.3\n"

var want = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/30")}

func TestFetchHTTPConditional(t *testing.T) {
	var hits, conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("If-None-Match") == `"v1"` {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte(list))
	}))
	defer srv.Close()
	f := NewFetcher()
	s := Source{Name: "x", URL: srv.URL}
	r, err := f.Fetch(context.Background(), s)
	if err != nil || !slices.Equal(r.Prefixes, want) || r.BadLines != 1 || r.FirstBad == nil || !strings.Contains(r.FirstBad.Error(), "line 4") {
		t.Fatalf("first fetch: %+v %v", r, err)
	}
	r, err = f.Fetch(context.Background(), s)
	if err != nil || !r.NotModified || conditional.Load() != 1 {
		t.Fatalf("second fetch: %+v %v (conditional %d)", r, err, conditional.Load())
	}
}

func TestFetchGzipAndCaps(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(list))
	zw.Close()
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write(gz.Bytes())
	}))
	defer srv.Close()
	f := NewFetcher()
	r, err := f.Fetch(context.Background(), Source{Name: "gz", URL: srv.URL})
	if err != nil || !slices.Equal(r.Prefixes, want) {
		t.Fatalf("gzip: %+v %v", r, err)
	}
	// The cap applies to what gzip unpacks, too.
	if _, err := f.Fetch(context.Background(), Source{Name: "gz2", URL: srv.URL, MaxSize: 40}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("size cap: %v", err)
	}
	status = http.StatusInternalServerError
	if _, err := f.Fetch(context.Background(), Source{Name: "gz3", URL: srv.URL}); err == nil || !strings.Contains(err.Error(), "500") {
		t.Fatalf("server error: %v", err)
	}
}

func TestFetchFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "list.txt")
	os.WriteFile(path, []byte(list), 0o644)
	f := NewFetcher()
	r, err := f.Fetch(context.Background(), Source{Name: "f", Path: path})
	if err != nil || !slices.Equal(r.Prefixes, want) {
		t.Fatalf("%+v %v", r, err)
	}
	if r, _ := f.Fetch(context.Background(), Source{Name: "f", Path: path}); !r.NotModified {
		t.Fatal("unchanged file not reported as such")
	}
	if _, err := f.Fetch(context.Background(), Source{Name: "g", Path: "/nonexistent"}); err == nil {
		t.Fatal("missing file: no error")
	}
}

// A fetch that failed (over the cap, garbage) leaves no validators
// behind: the next request is unconditional and gets the whole list,
// instead of 304 forever with a stale copy.
func TestFailedFetchKeepsNoValidators(t *testing.T) {
	var body atomic.Value
	body.Store(strings.Repeat("192.0.2.1\n", 100))
	var conditional atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") != "" || r.Header.Get("If-Modified-Since") != "" {
			conditional.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Last-Modified", "Mon, 30 Nov 2026 00:00:00 GMT")
		w.Write([]byte(body.Load().(string)))
	}))
	defer srv.Close()
	f := NewFetcher()
	s := Source{Name: "x", URL: srv.URL, MaxSize: 100}
	if _, err := f.Fetch(context.Background(), s); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the cap: %v", err)
	}
	body.Store("\x89PNG garbage\nmore garbage\n<html>503</html>\n")
	if _, err := f.Fetch(context.Background(), s); !errors.Is(err, ErrNoEntries) {
		t.Fatalf("garbage: %v", err)
	}
	body.Store("192.0.2.1\n")
	r, err := f.Fetch(context.Background(), s)
	if err != nil || r.NotModified || conditional.Load() != 0 || len(r.Prefixes) != 1 {
		t.Fatalf("after failures: %+v %v, %d conditional requests", r, err, conditional.Load())
	}
	// Now the validators are kept.
	if r, err := f.Fetch(context.Background(), s); err != nil || !r.NotModified {
		t.Fatalf("after a good fetch: %+v %v", r, err)
	}
}

// A whitelist feed's line broader than the floor is refused whole and
// counted bad; the rest of the feed stands.
func TestFetchRefusesLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "white.txt")
	os.WriteFile(path, []byte("192.0.2.0/24\n10.0.0.0 - 10.255.255.255\n"), 0o600)
	r, err := NewFetcher().Fetch(context.Background(), Source{Name: "w", Path: path,
		Refuse: func(ps []netip.Prefix) bool { return len(ps) != 1 || ps[0].Bits() < 12 }})
	if err != nil || len(r.Prefixes) != 1 || r.BadLines != 1 || !strings.Contains(r.FirstBad.Error(), "line 2") {
		t.Fatalf("%+v %v", r, err)
	}
}

// Package feed fetches address lists in spamd-setup's format from files
// and http(s) URLs: gzip or plain, with conditional GET, a size cap, and
// bad lines skipped and counted rather than failing the feed.
package feed

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"time"

	"github.com/spfd/spfd/listfile"
)

// DefaultMaxSize caps a feed's size, compressed or not.
const DefaultMaxSize = 64 << 20

// Source is one feed.
type Source struct {
	Name    string
	Path    string // a local file, or
	URL     string // an http or https URL
	MaxSize int64
}

// Result is one fetch.
type Result struct {
	Prefixes    []netip.Prefix
	NotModified bool // the server said 304: keep what you have
	BadLines    int
	FirstBad    error // the first bad line, for the log
}

// Fetcher remembers validators (ETag, Last-Modified) between fetches.
type Fetcher struct {
	Client       *http.Client
	etag         map[string]string
	lastModified map[string]string
	fileMTime    map[string]time.Time
}

// NewFetcher returns a fetcher with a client that times out.
func NewFetcher() *Fetcher {
	return &Fetcher{
		Client:       &http.Client{Timeout: 2 * time.Minute},
		etag:         make(map[string]string),
		lastModified: make(map[string]string),
		fileMTime:    make(map[string]time.Time),
	}
}

// ErrTooLarge means the feed is over its size cap.
var ErrTooLarge = errors.New("feed larger than its size cap")

// Fetch reads a feed. An error leaves the caller's last good copy in
// place; a NotModified result means the same.
func (f *Fetcher) Fetch(ctx context.Context, s Source) (Result, error) {
	limit := s.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	var body io.ReadCloser
	switch {
	case s.URL != "":
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
		if err != nil {
			return Result{}, err
		}
		if v := f.etag[s.Name]; v != "" {
			req.Header.Set("If-None-Match", v)
		}
		if v := f.lastModified[s.Name]; v != "" {
			req.Header.Set("If-Modified-Since", v)
		}
		resp, err := f.Client.Do(req)
		if err != nil {
			return Result{}, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
		case http.StatusNotModified:
			resp.Body.Close()
			return Result{NotModified: true}, nil
		default:
			resp.Body.Close()
			return Result{}, fmt.Errorf("%s: %s", s.URL, resp.Status)
		}
		defer func() {
			f.etag[s.Name] = resp.Header.Get("ETag")
			f.lastModified[s.Name] = resp.Header.Get("Last-Modified")
		}()
		body = resp.Body
	default:
		fh, err := os.Open(s.Path)
		if err != nil {
			return Result{}, err
		}
		if fi, err := fh.Stat(); err == nil {
			if t, ok := f.fileMTime[s.Name]; ok && t.Equal(fi.ModTime()) {
				fh.Close()
				return Result{NotModified: true}, nil
			}
			defer func() { f.fileMTime[s.Name] = fi.ModTime() }()
		}
		body = fh
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return Result{}, err
	}
	if int64(len(data)) > limit {
		return Result{}, ErrTooLarge
	}
	var r io.Reader = bytes.NewReader(data)
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return Result{}, fmt.Errorf("gzip: %w", err)
		}
		r = io.LimitReader(zr, limit+1)
		data, err = io.ReadAll(r)
		if err != nil {
			return Result{}, fmt.Errorf("gzip: %w", err)
		}
		if int64(len(data)) > limit {
			return Result{}, ErrTooLarge
		}
		r = bytes.NewReader(data)
	}
	ps, errs := listfile.Read(bufio.NewReader(r))
	res := Result{Prefixes: ps, BadLines: len(errs)}
	if len(errs) > 0 {
		res.FirstBad = errs[0]
	}
	return res, nil
}

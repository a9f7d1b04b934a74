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
	// Refuse, when set, rejects a line's entries (a whitelist feed's lines
	// broader than the safety floor, say); they count as bad lines.
	Refuse func(line []netip.Prefix) bool
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

// ErrNoEntries means a feed gave no valid entry but bad lines: garbage,
// an error page, a truncated or wrong file. The last good copy stays.
var ErrNoEntries = errors.New("no valid entry, only bad lines")

// Fetch reads a feed. An error leaves the caller's last good copy in
// place; a NotModified result means the same.
func (f *Fetcher) Fetch(ctx context.Context, s Source) (Result, error) {
	limit := s.MaxSize
	if limit <= 0 {
		limit = DefaultMaxSize
	}
	var body io.ReadCloser
	validate := func() {}
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
		// The validators are kept only once the body proved good: a
		// fetch that failed half-way would otherwise get 304 forever.
		etag, lastModified := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		validate = func() { f.etag[s.Name], f.lastModified[s.Name] = etag, lastModified }
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
			validate = func() { f.fileMTime[s.Name] = fi.ModTime() }
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
	var res Result
	errs := listfile.Scan(bufio.NewReader(r), func(n int, ps []netip.Prefix) {
		if s.Refuse != nil && s.Refuse(ps) {
			res.BadLines++
			if res.FirstBad == nil {
				res.FirstBad = fmt.Errorf("line %d: %v refused", n, ps[0])
			}
			return
		}
		res.Prefixes = append(res.Prefixes, ps...)
	})
	res.BadLines += len(errs)
	if len(errs) > 0 && res.FirstBad == nil {
		res.FirstBad = errs[0]
	}
	if len(res.Prefixes) == 0 && res.BadLines > 0 {
		return Result{}, fmt.Errorf("%w (%d, the first: %v)", ErrNoEntries, res.BadLines, res.FirstBad)
	}
	validate()
	return res, nil
}

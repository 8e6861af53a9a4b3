// Package stage moves a job's data between storage and the node: parallel
// ranged downloads from presigned URLs, each file verified by size and
// adler32 before anything can read it, with retries, and renewal of URLs
// that expired.
package stage

import (
	"context"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Error kinds.
var (
	// ErrChecksum: a file's size or adler32 did not match after every retry.
	ErrChecksum = errors.New("stage: checksum mismatch")
	// ErrFetch: a file could not be downloaded after every retry.
	ErrFetch = errors.New("stage: download failed")
)

// Source is one input file.
type Source struct {
	Name    string // file name under the destination directory
	URL     string // presigned GET URL
	Size    int64
	Adler32 string // 8 lowercase hex digits
}

// Renew returns a fresh URL for a source whose URL was refused (expired).
type Renew func(ctx context.Context, s Source) (string, error)

// Fetcher downloads sources. The zero value is not usable: see New.
type Fetcher struct {
	client   *http.Client
	chunk    int64 // bytes per ranged request
	parallel int   // ranged requests in flight, all files together
	retries  int   // whole-file attempts after the first
	renew    Renew
	log      *slog.Logger
}

// Options tune a Fetcher; zero values take the defaults.
type Options struct {
	Client   *http.Client
	Chunk    int64 // default 8 MiB
	Parallel int   // default 8
	Retries  int   // whole-file retries, default 2; negative: none
	Renew    Renew
	Logger   *slog.Logger
}

// New makes a Fetcher.
func New(o Options) *Fetcher {
	f := &Fetcher{client: o.Client, chunk: o.Chunk, parallel: o.Parallel, retries: o.Retries, renew: o.Renew, log: o.Logger}
	if f.chunk <= 0 {
		f.chunk = 8 << 20
	}
	if f.parallel <= 0 {
		f.parallel = 8
	}
	if f.client == nil {
		// Keep a connection per range in flight: the default keeps two per
		// host, and every other range would pay a new connection.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = f.parallel
		tr.DisableCompression = true
		f.client = &http.Client{Transport: tr}
	}
	switch {
	case o.Retries < 0:
		f.retries = 0
	case o.Retries == 0:
		f.retries = 2
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Fetch downloads every source into dir and makes each file read-only once
// verified. A file that fails its checks is never left under its name.
func (f *Fetcher) Fetch(ctx context.Context, dir string, srcs []Source) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sem := make(chan struct{}, f.parallel)
	g, gctx := errgroup.WithContext(ctx)
	for _, s := range srcs {
		if s.Name == "" || strings.Contains(s.Name, "/") || s.Name == "." || s.Name == ".." {
			return fmt.Errorf("%w: bad file name %q", ErrFetch, s.Name)
		}
		g.Go(func() error { return f.fetchFile(gctx, dir, s, sem) })
	}
	return g.Wait()
}

// fetchFile downloads one file, retrying the whole file when it fails its checks.
func (f *Fetcher) fetchFile(ctx context.Context, dir string, s Source, sem chan struct{}) error {
	final := filepath.Join(dir, s.Name)
	part := final + ".part"
	r := &remote{Source: s}
	var last error
	for attempt := 0; attempt <= f.retries; attempt++ {
		if attempt > 0 {
			f.log.Warn("retrying input", "file", s.Name, "attempt", attempt+1, "err", last)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
		var sum uint32
		sum, last = f.download(ctx, part, r, sem)
		if last == nil {
			last = verify(sum, s)
		}
		if last == nil {
			if err := os.Chmod(part, 0o444); err != nil {
				return err
			}
			return os.Rename(part, final)
		}
		os.Remove(part)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if errors.Is(last, ErrChecksum) {
		return fmt.Errorf("%s: %w", s.Name, last)
	}
	return fmt.Errorf("%w: %s: %v", ErrFetch, s.Name, last)
}

// remote is a source whose URL a renewal may replace while its ranges download.
type remote struct {
	Source
	mu sync.Mutex
}

func (r *remote) url() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.URL
}

// download fetches s into path by ranges, in parallel, and returns the
// adler32 of the whole file, combined from the ranges' own as they arrive:
// no second pass over the data.
func (f *Fetcher) download(ctx context.Context, path string, s *remote, sem chan struct{}) (uint32, error) {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	if s.Size == 0 {
		_, err := f.getRange(ctx, out, s, 0, 0, sem)
		return 1, err // adler32 of nothing
	}
	if err := out.Truncate(s.Size); err != nil {
		return 0, err
	}
	n := (s.Size + f.chunk - 1) / f.chunk
	sums := make([]uint32, n)
	g, gctx := errgroup.WithContext(ctx)
	for i := range n {
		off := i * f.chunk
		g.Go(func() (err error) {
			sums[i], err = f.getRange(gctx, out, s, off, min(f.chunk, s.Size-off), sem)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	sum := sums[0]
	for i := int64(1); i < n; i++ {
		sum = combine(sum, sums[i], min(f.chunk, s.Size-i*f.chunk))
	}
	return sum, out.Sync()
}

// getRange writes bytes [off, off+n) of s at off in out (n == 0: the whole, empty, file).
func (f *Fetcher) getRange(ctx context.Context, out *os.File, s *remote, off, n int64, sem chan struct{}) (uint32, error) {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-sem }()
	for renewed := false; ; renewed = true {
		u := s.url()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, err
		}
		if n > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
		}
		resp, err := f.client.Do(req)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				ue.URL = redact(ue.URL) // a presigned URL is a credential until it expires
			}
			return 0, err
		}
		if resp.StatusCode == http.StatusForbidden && !renewed && f.renew != nil {
			resp.Body.Close()
			s.mu.Lock()
			if s.URL == u { // the first range refused renews for all
				fresh, err := f.renew(ctx, s.Source)
				if err != nil {
					s.mu.Unlock()
					return 0, fmt.Errorf("renew the URL of %s: %w", s.Name, err)
				}
				s.URL = fresh
			}
			s.mu.Unlock()
			f.log.Info("input URL renewed", "file", s.Name)
			continue
		}
		sum, err := write(out, resp, off, n)
		resp.Body.Close()
		return sum, err
	}
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// write copies one range's body into out at off and returns its adler32.
func write(out *os.File, resp *http.Response, off, n int64) (uint32, error) {
	switch {
	case n > 0 && resp.StatusCode == http.StatusPartialContent, n == 0 && resp.StatusCode == http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, fmt.Errorf("GET: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	h := adler32.New()
	// Large copies: a 32 KiB default costs a write system call per 32 KiB.
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	got, err := io.CopyBuffer(io.MultiWriter(io.NewOffsetWriter(out, off), h), io.LimitReader(resp.Body, n+1), *buf)
	if err != nil {
		return 0, err
	}
	if got != n {
		return 0, fmt.Errorf("%w: range at %d: got %d bytes, want %d", ErrChecksum, off, got, n)
	}
	return h.Sum32(), nil
}

// combine is the adler32 of A followed by B, from adler32(A), adler32(B)
// and len(B) (the algorithm of zlib's adler32_combine).
func combine(a, b uint32, lenB int64) uint32 {
	const mod = 65521
	rem := uint32(lenB % mod)
	s1 := a & 0xffff
	s2 := uint32((uint64(rem) * uint64(s1)) % mod)
	s1 += (b & 0xffff) + mod - 1
	s2 += (a >> 16) + (b >> 16) + mod - rem
	if s1 >= mod {
		s1 -= mod
	}
	if s1 >= mod {
		s1 -= mod
	}
	if s2 >= 2*mod {
		s2 -= 2 * mod
	}
	if s2 >= mod {
		s2 -= mod
	}
	return s1 | s2<<16
}

// redact drops a URL's query, where a presigned URL carries its signature.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.RawQuery = ""
		return u.String()
	}
	return "(url)"
}

// verify checks the downloaded file's adler32 (its size was checked range by range).
func verify(sum uint32, s Source) error {
	got := fmt.Sprintf("%08x", sum)
	if s.Adler32 != "" && got != s.Adler32 {
		return fmt.Errorf("%w: adler32 %s, want %s", ErrChecksum, got, s.Adler32)
	}
	return nil
}

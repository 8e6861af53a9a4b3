// Package stage moves a job's data between storage and the node: parallel
// ranged downloads from presigned URLs, each file verified by size and
// adler32 before anything can read it, with retries, and renewal of URLs
// that expired.
package stage

import (
	"context"
	"encoding/hex"
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
	if f.client == nil {
		f.client = &http.Client{Timeout: 10 * time.Minute}
	}
	if f.chunk <= 0 {
		f.chunk = 8 << 20
	}
	if f.parallel <= 0 {
		f.parallel = 8
	}
	if f.retries < 0 {
		f.retries = 0
	} else if o.Retries == 0 {
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
		last = f.download(ctx, part, r, sem)
		if last == nil {
			last = verify(part, s)
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

// download fetches s into path by ranges, in parallel.
func (f *Fetcher) download(ctx context.Context, path string, s *remote, sem chan struct{}) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if s.Size == 0 {
		return f.getRange(ctx, out, s, 0, 0, sem)
	}
	if err := out.Truncate(s.Size); err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for off := int64(0); off < s.Size; off += f.chunk {
		n := min(f.chunk, s.Size-off)
		g.Go(func() error { return f.getRange(gctx, out, s, off, n, sem) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return out.Sync()
}

// getRange writes bytes [off, off+n) of s at off in out (n == 0: the whole, empty, file).
func (f *Fetcher) getRange(ctx context.Context, out *os.File, s *remote, off, n int64, sem chan struct{}) error {
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-sem }()
	for renewed := false; ; renewed = true {
		u := s.url()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
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
			return err
		}
		if resp.StatusCode == http.StatusForbidden && !renewed && f.renew != nil {
			resp.Body.Close()
			s.mu.Lock()
			if s.URL == u { // the first range refused renews for all
				fresh, err := f.renew(ctx, s.Source)
				if err != nil {
					s.mu.Unlock()
					return fmt.Errorf("renew the URL of %s: %w", s.Name, err)
				}
				s.URL = fresh
			}
			s.mu.Unlock()
			f.log.Info("input URL renewed", "file", s.Name)
			continue
		}
		err = write(out, resp, off, n)
		resp.Body.Close()
		return err
	}
}

func write(out *os.File, resp *http.Response, off, n int64) error {
	switch {
	case n > 0 && resp.StatusCode == http.StatusPartialContent, n == 0 && resp.StatusCode == http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET: %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	w := io.NewOffsetWriter(out, off)
	got, err := io.Copy(w, io.LimitReader(resp.Body, n+1))
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("%w: range at %d: got %d bytes, want %d", ErrChecksum, off, got, n)
	}
	return nil
}

// redact drops a URL's query, where a presigned URL carries its signature.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		u.RawQuery = ""
		return u.String()
	}
	return "(url)"
}

// verify checks the downloaded file's size and adler32.
func verify(path string, s Source) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := adler32.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if n != s.Size || (s.Adler32 != "" && sum != s.Adler32) {
		return fmt.Errorf("%w: %d bytes with adler32 %s, want %d bytes with %s", ErrChecksum, n, sum, s.Size, s.Adler32)
	}
	return nil
}

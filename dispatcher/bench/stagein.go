package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/pando-wms/pando/edge/cache"
	"github.com/pando-wms/pando/pilot/stage"
	"github.com/pando-wms/pando/plugins/storage"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
)

// StageInConfig configures `pando bench stagein`.
type StageInConfig struct {
	Files    int
	Size     int64
	Parallel int    // files fetched at once by the plain loop, ranges in flight for stage-in
	Chunk    int64  // stage-in range size (0: the Fetcher's default)
	Dir      string // where the server's data and the downloads go (default $TMPDIR)
}

// StageInResult compares Pando's stage-in with plain minio-go GETs of the
// same objects from the same server in the same run; JSON keys are a contract.
type StageInResult struct {
	Files          int     `json:"files"`
	Bytes          int64   `json:"bytes"`
	StageInMBps    float64 `json:"stagein_mb_per_sec"`
	RawMBps        float64 `json:"raw_mb_per_sec"`
	Ratio          float64 `json:"ratio"`
	StageInSeconds float64 `json:"stagein_seconds"`
	RawSeconds     float64 `json:"raw_seconds"`
	// The node cache: every file read back through its HTTP server (what a
	// stream job does), and 16 concurrent readers of an object not yet
	// cached, which must cost one upstream download.
	CacheHitMBps   float64 `json:"cache_hit_mb_per_sec"`
	ReadersFills   int64   `json:"concurrent_readers_upstream_fills"`
	ConcurrentRead int     `json:"concurrent_readers"`
}

// StageIn starts versitygw, uploads the files, then downloads them twice:
// with plain minio-go GETs written to files (no verification), and with
// pilot/stage (presigned URLs, ranges, adler32 verification, read-only).
func StageIn(ctx context.Context, cfg StageInConfig) (*StageInResult, error) {
	if cfg.Files <= 0 || cfg.Size < 0 {
		return nil, fmt.Errorf("bench: --files must be positive and --size not negative")
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	bin, err := s3test.Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.Dir, "pando-bench-stagein-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	srv, err := s3test.Launch(bin, filepath.Join(dir, "s3"), "data")
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	ep, err := storage.New(ctx, storage.Config{Name: "bench", Kind: "s3", URL: srv.URL, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		return nil, err
	}
	payload := make([]byte, cfg.Size)
	var srcs []stage.Source
	for i := range cfg.Files {
		payload[0] = byte(i) // distinct objects
		name := fmt.Sprintf("in-%04d", i)
		info, err := ep.Put(ctx, "data", name, bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		u, err := ep.Presign(ctx, http.MethodGet, "data", name, time.Hour)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, stage.Source{Name: name, URL: u.String(), Size: info.Size, Adler32: info.Adler32})
	}
	res := &StageInResult{Files: cfg.Files, Bytes: int64(cfg.Files) * cfg.Size}

	// Plain: one GET per object, cfg.Parallel at once, each written to a file.
	mc, err := minio.New(srv.URL[len("http://"):], &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, err
	}
	rawDir := filepath.Join(dir, "raw")
	if err := os.Mkdir(rawDir, 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallel)
	for _, s := range srcs {
		g.Go(func() error {
			obj, err := mc.GetObject(gctx, "data", s.Name, minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer obj.Close()
			f, err := os.Create(filepath.Join(rawDir, s.Name))
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(f, obj); err != nil {
				return err
			}
			return f.Sync()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("bench: plain GETs: %w", err)
	}
	res.RawSeconds = time.Since(t0).Seconds()

	t0 = time.Now()
	if err := stage.New(stage.Options{Parallel: cfg.Parallel, Chunk: cfg.Chunk}).Fetch(ctx, filepath.Join(dir, "staged"), srcs); err != nil {
		return nil, fmt.Errorf("bench: stage-in: %w", err)
	}
	res.StageInSeconds = time.Since(t0).Seconds()
	mb := float64(res.Bytes) / 1e6
	res.RawMBps, res.StageInMBps = mb/res.RawSeconds, mb/res.StageInSeconds
	res.Ratio = res.StageInMBps / res.RawMBps
	if err := cacheHits(ctx, dir, srcs, res); err != nil {
		return nil, err
	}
	return res, nil
}

// cacheHits fills a node cache with srcs, then reads every object back
// through the cache's HTTP server, and has 16 readers ask at once for one
// object the cache does not hold yet.
func cacheHits(ctx context.Context, dir string, srcs []stage.Source, res *StageInResult) error {
	c, err := cache.New(filepath.Join(dir, "cache"), 2*res.Bytes+1, nil)
	if err != nil {
		return err
	}
	f := stage.New(stage.Options{})
	get := func(s stage.Source) (*cache.Handle, error) {
		return c.Get(ctx, cache.InputKey("bench:data/"+s.Name, s.Adler32, s.Size), s.Size, func(ctx context.Context, dst string) error {
			s.Name = filepath.Base(dst)
			return f.Fetch(ctx, filepath.Dir(dst), []stage.Source{s})
		})
	}
	const readers = 16
	res.ConcurrentRead = readers
	before := c.Stats().Fills
	g, _ := errgroup.WithContext(ctx)
	for range readers {
		g.Go(func() error {
			h, err := get(srcs[0])
			if err == nil {
				h.Release()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("bench: concurrent readers: %w", err)
	}
	res.ReadersFills = c.Stats().Fills - before
	var ids []string
	for _, s := range srcs {
		h, err := get(s)
		if err != nil {
			return fmt.Errorf("bench: fill cache: %w", err)
		}
		ids = append(ids, filepath.Base(h.Path))
		h.Release()
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	t0 := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, id := range ids {
		g.Go(func() error {
			req, err := http.NewRequestWithContext(gctx, http.MethodGet, srv.URL+"/objects/"+id, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("cache: %s", resp.Status)
			}
			_, err = io.Copy(io.Discard, resp.Body)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("bench: cache hits: %w", err)
	}
	res.CacheHitMBps = float64(res.Bytes) / 1e6 / time.Since(t0).Seconds()
	return nil
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

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
	return res, nil
}

package s3_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
	"github.com/pando-wms/pando/plugins/storage/storagetest"
)

func endpoint(t *testing.T, srv *s3test.Server) storage.Endpoint {
	t.Helper()
	ep, err := storage.New(context.Background(), storage.Config{Name: "lake", Kind: "s3", URL: srv.URL,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t, "conformance")
	storagetest.Run(t, endpoint(t, srv), "conformance")
}

// A byte flipped on the server's side shows as a checksum that no longer
// matches the data read; a stopped server is ErrUnavailable, not "not found".
func TestCorruptionAndOutage(t *testing.T) {
	srv := s3test.Start(t, "data")
	ep := endpoint(t, srv)
	ctx := context.Background()
	info, err := ep.Put(ctx, "data", "f", bytes.NewReader([]byte("the original content")))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(srv.Dir, "data", "f")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[3] ^= 0x01
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := ep.Open(ctx, "data", "f", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	got, _, sumErr := storage.Adler32(r)
	r.Close()
	if sumErr != nil {
		t.Fatal(sumErr)
	}
	if got == info.Adler32 {
		t.Fatal("a flipped byte kept the adler32: the check cannot catch it")
	}
	srv.Stop()
	_, err = ep.Stat(ctx, "data", "f")
	if !errors.Is(err, storage.ErrUnavailable) || !storage.IsRetryable(err) {
		t.Fatalf("stat with the server down: %v, want ErrUnavailable", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := ep.List(sctx, "data", ""); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("list with the server down: %v, want ErrUnavailable", err)
	}
}

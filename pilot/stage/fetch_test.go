package stage_test

import (
	"bytes"
	"context"
	"errors"
	"hash/adler32"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pando-wms/pando/pilot/stage"
	"github.com/pando-wms/pando/plugins/storage"
	_ "github.com/pando-wms/pando/plugins/storage/s3"
	"github.com/pando-wms/pando/plugins/storage/s3/s3test"
)

type env struct {
	srv *s3test.Server
	ep  storage.Endpoint
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := s3test.Start(t, "data")
	ep, err := storage.New(context.Background(), storage.Config{Name: "lake", Kind: "s3", URL: srv.URL,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return &env{srv: srv, ep: ep}
}

func content(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*7919 + 1
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}

// put stores an object and returns its source with a presigned URL.
func (e *env) put(t *testing.T, name string, b []byte, ttl time.Duration) stage.Source {
	t.Helper()
	info, err := e.ep.Put(context.Background(), "data", name, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.ep.Presign(context.Background(), http.MethodGet, "data", name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return stage.Source{Name: name, URL: u.String(), Size: info.Size, Adler32: info.Adler32}
}

func TestFetchRangesVerified(t *testing.T) {
	e := newEnv(t)
	const chunk = 64 << 10
	var srcs []stage.Source
	want := map[string][]byte{}
	for i, n := range []int{0, 1, chunk - 1, chunk + 1, 3*chunk + 17} {
		b := content(n, byte(i))
		name := "f" + string(rune('a'+i))
		srcs = append(srcs, e.put(t, name, b, time.Hour))
		want[name] = b
	}
	dir := t.TempDir()
	if err := stage.New(stage.Options{Chunk: chunk, Parallel: 4}).Fetch(context.Background(), dir, srcs); err != nil {
		t.Fatal(err)
	}
	for name, b := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Errorf("%s: %d bytes, %v; want %d bytes as stored", name, len(got), err, len(b))
		}
		if st, _ := os.Stat(filepath.Join(dir, name)); st.Mode().Perm() != 0o444 {
			t.Errorf("%s: mode %v, want read-only", name, st.Mode())
		}
	}
}

// flaky corrupts the first response for one object, as a bad network or
// server would: the check catches it and the retry gets clean data.
type flaky struct {
	rt   http.RoundTripper
	hits atomic.Int32
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := f.rt.RoundTrip(r)
	if err == nil && f.hits.Add(1) == 1 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(b) > 0 {
			b[len(b)/2] ^= 0x40
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, err
}

func TestCorruptionRetriedThenRefused(t *testing.T) {
	e := newEnv(t)
	src := e.put(t, "c", content(100_000, 9), time.Hour)
	dir := t.TempDir()
	tr := &flaky{rt: http.DefaultTransport}
	if err := stage.New(stage.Options{Client: &http.Client{Transport: tr}}).Fetch(context.Background(), dir, []stage.Source{src}); err != nil {
		t.Fatalf("a corrupt first transfer was not retried: %v", err)
	}
	if tr.hits.Load() < 2 {
		t.Fatalf("%d requests: the corruption went unnoticed", tr.hits.Load())
	}
	// Now flip a byte of the object on the server: every transfer is corrupt.
	file := filepath.Join(e.srv.Dir, "data", "c")
	b, _ := os.ReadFile(file)
	b[500] ^= 0x01
	os.WriteFile(file, b, 0o644)
	dir2 := t.TempDir()
	err := stage.New(stage.Options{}).Fetch(context.Background(), dir2, []stage.Source{src})
	if !errors.Is(err, stage.ErrChecksum) {
		t.Fatalf("persistent corruption: %v, want ErrChecksum", err)
	}
	if entries, _ := os.ReadDir(dir2); len(entries) != 0 {
		t.Fatalf("corrupt data left behind for the payload: %v", entries)
	}
}

func TestExpiredURLRenewed(t *testing.T) {
	e := newEnv(t)
	src := e.put(t, "x", content(300_000, 3), time.Second)
	time.Sleep(2100 * time.Millisecond)
	var renewals atomic.Int32
	renew := func(ctx context.Context, s stage.Source) (string, error) {
		renewals.Add(1)
		u, err := e.ep.Presign(ctx, http.MethodGet, "data", s.Name, time.Hour)
		if err != nil {
			return "", err
		}
		return u.String(), nil
	}
	dir := t.TempDir()
	if err := stage.New(stage.Options{Chunk: 64 << 10, Renew: renew}).Fetch(context.Background(), dir, []stage.Source{src}); err != nil {
		t.Fatal(err)
	}
	if n := renewals.Load(); n != 1 {
		t.Errorf("%d renewals, want 1 for all the file's ranges", n)
	}
}

func TestServerDown(t *testing.T) {
	e := newEnv(t)
	src := e.put(t, "d", content(10, 1), time.Hour)
	e.srv.Stop()
	err := stage.New(stage.Options{Retries: -1}).Fetch(context.Background(), t.TempDir(), []stage.Source{src})
	if !errors.Is(err, stage.ErrFetch) {
		t.Fatalf("server down: %v, want ErrFetch", err)
	}
	t.Log(err)
}

func TestCombine(t *testing.T) {
	b := content(1<<20+123, 7)
	for _, cut := range []int{0, 1, 5551, 65521, 1 << 19, len(b)} {
		a1, b1 := adler(b[:cut]), adler(b[cut:])
		if got, want := stage.Combine(a1, b1, int64(len(b)-cut)), adler(b); got != want {
			t.Errorf("cut %d: combined %08x, want %08x", cut, got, want)
		}
	}
}

func adler(b []byte) uint32 { return adler32.Checksum(b) }

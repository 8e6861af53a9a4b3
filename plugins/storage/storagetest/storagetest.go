// Package storagetest is the conformance suite every storage kind must
// pass. Each kind's tests call Run with an endpoint and an existing, empty
// bucket.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/storage"
)

// Run runs every case as a subtest.
func Run(t *testing.T, ep storage.Endpoint, bucket string) {
	s := &suite{ep: ep, bucket: bucket}
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"PutStat", s.testPutStat},
		{"OpenRanges", s.testOpenRanges},
		{"List", s.testList},
		{"NotFound", s.testNotFound},
		{"Overwrite", s.testOverwrite},
		{"Concurrent", s.testConcurrent},
		{"Presign", s.testPresign},
	} {
		t.Run(c.name, c.fn)
	}
}

type suite struct {
	ep     storage.Endpoint
	bucket string
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// data is n deterministic, non-repeating-looking bytes.
func data(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func sum(b []byte) string {
	s, _, _ := storage.Adler32(bytes.NewReader(b))
	return s
}

func (s *suite) put(t *testing.T, path string, b []byte) storage.Info {
	t.Helper()
	info, err := s.ep.Put(ctx(t), s.bucket, path, bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put %s: %v", path, err)
	}
	return info
}

func (s *suite) read(t *testing.T, path string, off, n int64) []byte {
	t.Helper()
	r, err := s.ep.Open(ctx(t), s.bucket, path, off, n)
	if err != nil {
		t.Fatalf("Open %s [%d,+%d]: %v", path, off, n, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

func (s *suite) testPutStat(t *testing.T) {
	b := data(100_000, 1)
	info := s.put(t, "putstat/a.bin", b)
	if info.Size != int64(len(b)) || info.Adler32 != sum(b) {
		t.Errorf("Put returned %+v, want size %d adler32 %s", info, len(b), sum(b))
	}
	st, err := s.ep.Stat(ctx(t), s.bucket, "putstat/a.bin")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(b)) || st.Adler32 != sum(b) || st.Path != "putstat/a.bin" || st.ModTime.IsZero() {
		t.Errorf("Stat = %+v, want path putstat/a.bin, size %d, adler32 %s, a time", st, len(b), sum(b))
	}
	if got := s.read(t, "putstat/a.bin", 0, -1); !bytes.Equal(got, b) {
		t.Errorf("read back %d bytes, not what was put", len(got))
	}
	empty := s.put(t, "putstat/empty", nil)
	if empty.Size != 0 || empty.Adler32 != "00000001" {
		t.Errorf("empty object: %+v, want size 0, adler32 00000001", empty)
	}
}

func (s *suite) testOpenRanges(t *testing.T) {
	b := data(10_000, 2)
	s.put(t, "ranges/r.bin", b)
	for _, r := range []struct{ off, n int64 }{{0, 1}, {0, 10_000}, {123, 4567}, {9_999, 1}, {5_000, -1}, {0, -1}, {100, 0}} {
		want := b[r.off:]
		if r.n >= 0 {
			want = b[r.off : r.off+r.n]
		}
		if got := s.read(t, "ranges/r.bin", r.off, r.n); !bytes.Equal(got, want) {
			t.Errorf("range off %d n %d: got %d bytes, want %d (content differs: %v)", r.off, r.n, len(got), len(want), len(got) == len(want))
		}
	}
}

func (s *suite) testList(t *testing.T) {
	for _, p := range []string{"list/run1/b", "list/run1/a", "list/run1/sub/c", "list/run2/d"} {
		s.put(t, p, []byte(p))
	}
	got, err := s.ep.List(ctx(t), s.bucket, "list/run1/")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, i := range got {
		paths = append(paths, i.Path)
		if i.Size != int64(len(i.Path)) || i.Adler32 != sum([]byte(i.Path)) {
			t.Errorf("%s: size %d adler32 %q, want %d and %s", i.Path, i.Size, i.Adler32, len(i.Path), sum([]byte(i.Path)))
		}
	}
	if strings.Join(paths, " ") != "list/run1/a list/run1/b list/run1/sub/c" {
		t.Errorf("List = %v, want the three objects under list/run1/, sorted", paths)
	}
	if none, err := s.ep.List(ctx(t), s.bucket, "list/nothing/"); err != nil || len(none) != 0 {
		t.Errorf("empty prefix: %v, %v", none, err)
	}
}

func (s *suite) testNotFound(t *testing.T) {
	if _, err := s.ep.Stat(ctx(t), s.bucket, "missing/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat missing: %v, want ErrNotFound", err)
	}
	if _, err := s.ep.Open(ctx(t), s.bucket, "missing/x", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open missing: %v, want ErrNotFound", err)
	}
	if _, err := s.ep.Stat(ctx(t), "pando-no-such-bucket", "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat in a missing bucket: %v, want ErrNotFound", err)
	}
}

func (s *suite) testOverwrite(t *testing.T) {
	s.put(t, "over/o", data(5000, 3))
	b := data(700, 4)
	s.put(t, "over/o", b)
	st, err := s.ep.Stat(ctx(t), s.bucket, "over/o")
	if err != nil || st.Size != 700 || st.Adler32 != sum(b) {
		t.Errorf("after overwrite: %+v, %v", st, err)
	}
	if got := s.read(t, "over/o", 0, -1); !bytes.Equal(got, b) {
		t.Error("overwrite: old content read back")
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := data(20_000, byte(i))
			p := fmt.Sprintf("conc/%02d", i)
			if _, err := s.ep.Put(ctx(t), s.bucket, p, bytes.NewReader(b)); err != nil {
				errs <- err
				return
			}
			r, err := s.ep.Open(ctx(t), s.bucket, p, 0, -1)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			got, _ := io.ReadAll(r)
			if !bytes.Equal(got, b) {
				errs <- fmt.Errorf("%s: content differs", p)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Presigned URLs work over plain HTTP without credentials and stop working when they expire.
func (s *suite) testPresign(t *testing.T) {
	b := data(3000, 5)
	s.put(t, "presign/g", b)
	u, err := s.ep.Presign(ctx(t), http.MethodGet, s.bucket, "presign/g", time.Minute)
	if errors.Is(err, storage.ErrUnsupported) {
		t.Skipf("%s endpoints cannot presign", s.ep.Kind())
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
		t.Errorf("presigned GET: %s, %d bytes", resp.Status, len(got))
	}
	pu, err := s.ep.Presign(ctx(t), http.MethodPut, s.bucket, "presign/p", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, pu.String(), bytes.NewReader(b))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 { // S3 answers 200, a tape door 201 Created
		t.Fatalf("presigned PUT: %s", resp.Status)
	}
	if got := s.read(t, "presign/p", 0, -1); !bytes.Equal(got, b) {
		t.Error("presigned PUT stored other bytes")
	}
	short, err := s.ep.Presign(ctx(t), http.MethodGet, s.bucket, "presign/g", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	resp, err = http.Get(short.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired presigned GET: %s, want 403 Forbidden", resp.Status)
	}
}

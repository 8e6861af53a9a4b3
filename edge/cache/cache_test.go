package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeFill fills with b, counting upstream fetches, slowly enough that
// concurrent readers overlap.
func writeFill(b []byte, fetches *atomic.Int32) Fill {
	return func(ctx context.Context, dst string) error {
		fetches.Add(1)
		time.Sleep(50 * time.Millisecond)
		return os.WriteFile(dst, b, 0o644)
	}
}

func TestOneUpstreamFetchForConcurrentReaders(t *testing.T) {
	c, err := New(t.TempDir(), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Repeat([]byte("x"), 4096)
	var fetches atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := c.Get(context.Background(), Key{"lake", "run1/f", "abc"}, int64(len(b)), writeFill(b, &fetches))
			if err != nil {
				t.Error(err)
				return
			}
			defer h.Release()
			got, _ := os.ReadFile(h.Path)
			if !bytes.Equal(got, b) {
				t.Error("wrong content")
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d upstream fetches for 16 concurrent readers, want 1", n)
	}
}

func TestLRUEvictionWithinBudget(t *testing.T) {
	dir := t.TempDir()
	c, _ := New(dir, 3000, nil)
	var fetches atomic.Int32
	get := func(name string) *Handle {
		t.Helper()
		h, err := c.Get(context.Background(), Key{"lake", name, "1"}, 1000, writeFill(bytes.Repeat([]byte{name[0]}, 1000), &fetches))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	for _, n := range []string{"a", "b", "c"} {
		get(n).Release()
	}
	get("a").Release() // a is now the most recent: b goes first
	get("d").Release()
	if st := c.Stats(); st.Bytes > 3000 || st.Objects != 3 {
		t.Fatalf("stats %+v: over budget", st)
	}
	before := fetches.Load()
	get("a").Release()
	get("c").Release()
	if fetches.Load() != before {
		t.Fatal("a or c was evicted instead of b, the least recently used")
	}
	get("b").Release()
	if fetches.Load() != before+1 {
		t.Fatal("b was not evicted")
	}
	// Pinned objects stay: with all three pinned a fourth does not fit.
	h1, h2, h3 := get("x"), get("y"), get("z")
	_, err := c.Get(context.Background(), Key{"lake", "w", "1"}, 1000, writeFill(make([]byte, 1000), &fetches))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("a fourth object with three pinned: %v, want ErrFull", err)
	}
	h1.Release()
	h2.Release()
	h3.Release()
	// A new cache on the same directory keeps what is there.
	c2, err := New(dir, 3000, nil)
	if err != nil || c2.Stats().Objects != 3 {
		t.Fatalf("reopened: %+v, %v", c2.Stats(), err)
	}
}

func TestFailedFillNotCached(t *testing.T) {
	c, _ := New(t.TempDir(), 1<<20, nil)
	boom := errors.New("checksum mismatch")
	_, err := c.Get(context.Background(), Key{"lake", "f", "1"}, 10, func(ctx context.Context, dst string) error {
		os.WriteFile(dst, []byte("corrupt!!!"), 0o644)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	var fetches atomic.Int32
	h, err := c.Get(context.Background(), Key{"lake", "f", "1"}, 10, writeFill([]byte("0123456789"), &fetches))
	if err != nil || fetches.Load() != 1 {
		t.Fatalf("after a failed fill: %v, %d fetches", err, fetches.Load())
	}
	h.Release()
	if _, err := c.Get(context.Background(), Key{"lake", "g", "1"}, 10, writeFill([]byte("short"), &fetches)); err == nil {
		t.Fatal("a fill of the wrong size was accepted")
	}
}

func TestHTTPRanges(t *testing.T) {
	c, _ := New(t.TempDir(), 1<<20, nil)
	b := make([]byte, 10000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	var fetches atomic.Int32
	k := Key{"lake", "run1/big", "ff"}
	h, err := c.Get(context.Background(), k, int64(len(b)), writeFill(b, &fetches))
	if err != nil {
		t.Fatal(err)
	}
	h.Release()
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/objects/"+k.ID(), nil)
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, b[1000:2000]) {
		t.Fatalf("range: %s, %d bytes", resp.Status, len(got))
	}
	for _, p := range []string{"/objects/" + Key{"lake", "other", "ff"}.ID(), "/objects/../x", "/other"} {
		resp, _ := http.Get(srv.URL + p)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

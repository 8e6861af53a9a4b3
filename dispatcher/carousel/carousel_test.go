package carousel_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/carousel"
	"github.com/pando-wms/pando/plugins/storage"
	"github.com/pando-wms/pando/plugins/storage/tape"
	"github.com/pando-wms/pando/plugins/storage/tape/emulator"
)

// 40 files on 4 cartridges through a window of 6 files and 5 kB: every
// file reaches disk, the window is never exceeded, and a file missing from
// tape is given up after its retries.
func TestWindowNeverExceeded(t *testing.T) {
	dir := t.TempDir()
	var files []carousel.File
	for i := range 40 {
		p := fmt.Sprintf("/T%d/f%02d", i%4, i)
		os.MkdirAll(filepath.Join(dir, "tape", filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, "tape", p), make([]byte, 1000), 0o644)
		files = append(files, carousel.File{Path: p, Size: 1000})
	}
	files = append(files, carousel.File{Path: "/T0/missing", Size: 10})
	emu, err := emulator.New(emulator.Config{Dir: dir, Drives: 2, Mount: 20 * time.Millisecond, Seek: 2 * time.Millisecond, BufferBytes: 8000})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	defer func() { srv.Close(); emu.Close() }()
	ep, err := storage.New(context.Background(), storage.Config{Name: "archive", Kind: "tape", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	win := carousel.Window{Files: 6, Bytes: 5000}
	c := carousel.New(ep.(*tape.Endpoint), carousel.Config{Window: win, Poll: 10 * time.Millisecond, Retries: 1})
	out := make(chan carousel.Result)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx, files, out); close(out) }()
	ok, failed := 0, 0
	for r := range out {
		if r.Err != nil {
			failed++
			if r.File.Path != "/T0/missing" {
				t.Errorf("%s: %v", r.File.Path, r.Err)
			}
			continue
		}
		ok++
		// The payload reads it, then releases it: the window slides.
		if err := c.Release(ctx, r.File); err != nil {
			t.Error(err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if ok != 40 || failed != 1 {
		t.Fatalf("%d staged, %d failed; want 40 and 1", ok, failed)
	}
	if p := c.Peak(); p.Files > win.Files || p.Bytes > win.Bytes {
		t.Fatalf("peak in flight %+v exceeds the window %+v", p, win)
	}
}

package tape_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/plugins/storage"
	"github.com/pando-wms/pando/plugins/storage/storagetest"
	"github.com/pando-wms/pando/plugins/storage/tape"
	"github.com/pando-wms/pando/plugins/storage/tape/emulator"
)

func start(t *testing.T, cfg emulator.Config) (*emulator.Server, *tape.Endpoint) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	emu, err := emulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu.Handler())
	t.Cleanup(func() { srv.Close(); emu.Close() })
	ep, err := storage.New(context.Background(), storage.Config{Name: "archive", Kind: "tape", URL: srv.URL, SecretKey: cfg.Secret})
	if err != nil {
		t.Fatal(err)
	}
	return emu, ep.(*tape.Endpoint)
}

func TestConformance(t *testing.T) {
	_, ep := start(t, emulator.Config{Mount: time.Millisecond, Seek: time.Millisecond})
	storagetest.Run(t, ep, "conformance")
}

// With a secret, the emulator wants it (or a signed URL) on every request,
// and the endpoint signs door URLs that expire: the whole suite, presigning
// included, passes.
func TestConformanceWithSecret(t *testing.T) {
	emu, ep := start(t, emulator.Config{Mount: time.Millisecond, Seek: time.Millisecond, Secret: "s3cr3t"})
	storagetest.Run(t, ep, "conformance")
	srv := httptest.NewServer(emu.Handler())
	defer srv.Close()
	anon, err := storage.New(context.Background(), storage.Config{Name: "anon", Kind: "tape", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.List(context.Background(), "conformance", ""); err == nil || !strings.Contains(err.Error(), "bearer token") {
		t.Errorf("List without the secret: %v; want refused", err)
	}
}

// Files written straight onto cartridges are on tape only: reading them
// fails until a stage request brings them to disk through the drives, and
// a drive reads a mounted cartridge's files before mounting another.
func TestStageThroughDrives(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"A/f1", "A/f2", "B/g1", "A/f3"} {
		file := filepath.Join(dir, "tape", p)
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, []byte("content of "+p), 0o644)
	}
	emu, ep := start(t, emulator.Config{Dir: dir, Drives: 1, Mount: 50 * time.Millisecond, Seek: 5 * time.Millisecond})
	ctx := context.Background()
	if _, err := ep.Open(ctx, "A", "f1", 0, -1); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("read before staging: %v, want ErrUnavailable", err)
	}
	loc, err := ep.Locality(ctx, []string{"/A/f1", "/A/none"})
	if err != nil || loc["/A/f1"] != "TAPE" || loc["/A/none"] != "NONE" {
		t.Fatalf("locality %v, %v", loc, err)
	}
	id, err := ep.Stage(ctx, []string{"/A/f1", "/B/g1", "/A/f2", "/A/f3", "/A/missing"})
	if err != nil {
		t.Fatal(err)
	}
	var files []tape.FileState
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if files, err = ep.Poll(ctx, id); err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, f := range files {
			if f.State == "COMPLETED" || f.State == "FAILED" {
				done++
			}
		}
		if done == len(files) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stage request not done: %+v", files)
		}
	}
	for _, f := range files {
		want := "COMPLETED"
		if f.Path == "/A/missing" {
			want = "FAILED"
		}
		if f.State != want {
			t.Errorf("%s: %s (%s), want %s", f.Path, f.State, f.Error, want)
		}
	}
	if mounts, _ := emu.Stats(); mounts != 2 {
		t.Errorf("%d mounts for files on 2 cartridges with one drive, want 2 (A's files read together)", mounts)
	}
	r, err := ep.Open(ctx, "B", "g1", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "content of B/g1" {
		t.Fatalf("read %q", b)
	}
	if err := ep.Release(ctx, id, []string{"/A/f1"}); err != nil {
		t.Fatal(err)
	}
}

// A FIFO tape system recalls in arrival order, remounting whenever the
// next file sits on another cartridge; an unknown order is refused.
func TestFIFOOrder(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"A/f1", "A/f2", "B/g1"} {
		file := filepath.Join(dir, "tape", p)
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, []byte("content of "+p), 0o644)
	}
	emu, ep := start(t, emulator.Config{Dir: dir, Drives: 1, Mount: 20 * time.Millisecond, Seek: time.Millisecond, Order: emulator.OrderFIFO})
	ctx := context.Background()
	id, err := ep.Stage(ctx, []string{"/A/f1", "/B/g1", "/A/f2"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		files, err := ep.Poll(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, f := range files {
			if f.State == "COMPLETED" {
				done++
			}
		}
		if done == len(files) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stage request not done: %+v", files)
		}
	}
	if mounts, _ := emu.Stats(); mounts != 3 {
		t.Errorf("%d mounts for A, B, A in arrival order with one drive, want 3", mounts)
	}
	if _, err := emulator.New(emulator.Config{Dir: t.TempDir(), Order: "lifo"}); err == nil || !strings.Contains(err.Error(), `order "lifo"`) {
		t.Errorf("order lifo: %v, want refused", err)
	}
}

// A buffer smaller than the files pinned by active requests evicts only released files.
func TestBufferEvictsReleasedFilesOnly(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"A/1", "A/2", "A/3"} {
		file := filepath.Join(dir, "tape", p)
		os.MkdirAll(filepath.Dir(file), 0o755)
		os.WriteFile(file, make([]byte, 1000), 0o644)
	}
	_, ep := start(t, emulator.Config{Dir: dir, Drives: 1, Mount: time.Millisecond, Seek: time.Millisecond, BufferBytes: 2000})
	ctx := context.Background()
	wait := func(id string) []tape.FileState {
		for {
			fs, err := ep.Poll(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			busy := false
			for _, f := range fs {
				busy = busy || f.State == "SUBMITTED" || f.State == "STARTED"
			}
			if !busy {
				return fs
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	id1, _ := ep.Stage(ctx, []string{"/A/1", "/A/2"})
	wait(id1)
	id2, _ := ep.Stage(ctx, []string{"/A/3"})
	if fs := wait(id2); fs[0].State != "FAILED" {
		t.Fatalf("a third file in a full, pinned buffer: %+v, want FAILED", fs)
	}
	ep.Release(ctx, id1, []string{"/A/1"})
	id3, _ := ep.Stage(ctx, []string{"/A/3"})
	if fs := wait(id3); fs[0].State != "COMPLETED" {
		t.Fatalf("after a release: %+v, want COMPLETED", fs)
	}
	loc, _ := ep.Locality(ctx, []string{"/A/1", "/A/2", "/A/3"})
	if loc["/A/1"] != "TAPE" || loc["/A/2"] != "DISK_AND_TAPE" || loc["/A/3"] != "DISK_AND_TAPE" {
		t.Fatalf("locality %v: only the released file should have left the buffer", loc)
	}
}

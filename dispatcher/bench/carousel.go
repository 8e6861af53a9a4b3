package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pando-wms/pando/dispatcher/carousel"
	"github.com/pando-wms/pando/plugins/storage"
	"github.com/pando-wms/pando/plugins/storage/tape"
	"github.com/pando-wms/pando/plugins/storage/tape/emulator"
)

// CarouselConfig configures `pando bench carousel`.
type CarouselConfig struct {
	Files, Cartridges, Drives int
	Size, Rate, Buffer        int64
	Mount, Seek               time.Duration
	Window                    carousel.Window
	// Consumers jobs each hold a file for Hold before releasing it (a job
	// reading its input); 0 consumers release each file at once.
	Consumers int
	Hold      time.Duration
	// TapeOrder is the emulator's recall order (emulator.OrderTape or
	// OrderFIFO; "" is OrderTape).
	TapeOrder string
}

// CarouselResult compares the windowed carousel with the drives' limit and
// with first-come staging of everything at once; JSON keys are a contract.
type CarouselResult struct {
	Files           int     `json:"files"`
	TapeOrder       string  `json:"tape_order"`
	Bytes           int64   `json:"bytes"`
	CarouselMBps    float64 `json:"carousel_mb_per_sec"`
	LimitMBps       float64 `json:"limit_mb_per_sec"`
	RatioLimit      float64 `json:"ratio_to_limit"`
	UnwindowedMBps  float64 `json:"unwindowed_mb_per_sec"`
	RatioUnwindowed float64 `json:"ratio_to_unwindowed"`
	CarouselMounts  int64   `json:"carousel_mounts"`
	UnwindowedMount int64   `json:"unwindowed_mounts"`
	CarouselRetried int     `json:"carousel_retried"`
	UnwindowedRetry int     `json:"unwindowed_retried"` // files the full buffer refused, requested again
	PeakFiles       int     `json:"peak_files_in_flight"`
	PeakBytes       int64   `json:"peak_bytes_in_flight"`
}

// Carousel stages the same files twice from fresh emulators: through the
// window, and first come, all at once (in dataset order, retrying what the
// full buffer refuses). The consumer releases each file as soon as it is
// on disk. Files are needed in dataset order, which spreads them over the
// cartridges (file i on cartridge i mod Cartridges).
func Carousel(ctx context.Context, cfg CarouselConfig) (*CarouselResult, error) {
	if cfg.Files <= 0 || cfg.Cartridges <= 0 || cfg.Drives <= 0 || cfg.Size <= 0 || cfg.Rate <= 0 {
		return nil, fmt.Errorf("bench: files, cartridges, drives, size and rate must be positive")
	}
	dir, err := os.MkdirTemp("", "pando-bench-carousel-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var files []carousel.File
	for i := range cfg.Files {
		p := fmt.Sprintf("/C%02d/f%05d", i%cfg.Cartridges, i)
		files = append(files, carousel.File{Path: p, Size: cfg.Size})
	}
	if cfg.TapeOrder == "" {
		cfg.TapeOrder = emulator.OrderTape
	}
	res := &CarouselResult{Files: cfg.Files, TapeOrder: cfg.TapeOrder, Bytes: int64(cfg.Files) * cfg.Size}
	perFile := cfg.Seek + time.Duration(float64(cfg.Size)/float64(cfg.Rate)*float64(time.Second))
	limit := (time.Duration(cfg.Cartridges)*cfg.Mount + time.Duration(cfg.Files)*perFile) / time.Duration(cfg.Drives)
	mb := float64(res.Bytes) / 1e6
	res.LimitMBps = mb / limit.Seconds()
	if cfg.Consumers > 0 && cfg.Hold > 0 { // the jobs may be slower than the drives
		res.LimitMBps = min(res.LimitMBps, float64(cfg.Consumers)*float64(cfg.Size)/1e6/cfg.Hold.Seconds())
	}

	var retried int
	run := func(name string, win carousel.Window, retries int, firstCome bool) (float64, int64, carousel.Window, error) {
		d := filepath.Join(dir, name)
		payload := make([]byte, cfg.Size)
		for _, f := range files {
			file := filepath.Join(d, "tape", filepath.FromSlash(f.Path))
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				return 0, 0, carousel.Window{}, err
			}
			if err := os.WriteFile(file, payload, 0o644); err != nil {
				return 0, 0, carousel.Window{}, err
			}
		}
		emu, err := emulator.New(emulator.Config{Dir: d, Drives: cfg.Drives, Mount: cfg.Mount, Seek: cfg.Seek, Rate: cfg.Rate, BufferBytes: cfg.Buffer, Order: cfg.TapeOrder})
		if err != nil {
			return 0, 0, carousel.Window{}, err
		}
		srv := httptest.NewServer(emu.Handler())
		defer func() { srv.Close(); emu.Close() }()
		ep, err := storage.New(ctx, storage.Config{Name: "tape", Kind: "tape", URL: srv.URL})
		if err != nil {
			return 0, 0, carousel.Window{}, err
		}
		c := carousel.New(ep.(*tape.Endpoint), carousel.Config{Window: win, Poll: 20 * time.Millisecond, Retries: retries, Streams: cfg.Drives, FirstCome: firstCome})
		out := make(chan carousel.Result, len(files)) // the carousel never waits for its consumers
		errc := make(chan error, 1)
		t0 := time.Now()
		go func() { errc <- c.Run(ctx, files, out); close(out) }()
		var nfailed atomic.Int64
		var wg sync.WaitGroup
		for range max(cfg.Consumers, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range out {
					if r.Err != nil {
						nfailed.Add(1)
						continue
					}
					time.Sleep(cfg.Hold)
					_ = c.Release(ctx, r.File)
				}
			}()
		}
		wg.Wait()
		failed := nfailed.Load()
		if err := <-errc; err != nil {
			return 0, 0, carousel.Window{}, err
		}
		if failed > 0 {
			return 0, 0, carousel.Window{}, fmt.Errorf("bench: %s: %d files failed", name, failed)
		}
		mounts, _ := emu.Stats()
		retried = c.Retried()
		return mb / time.Since(t0).Seconds(), mounts, c.Peak(), nil
	}
	var peak carousel.Window
	if res.CarouselMBps, res.CarouselMounts, peak, err = run("windowed", cfg.Window, 2, false); err != nil {
		return nil, err
	}
	res.PeakFiles, res.PeakBytes, res.CarouselRetried = peak.Files, peak.Bytes, retried
	if res.UnwindowedMBps, res.UnwindowedMount, _, err = run("unwindowed", carousel.Window{Files: cfg.Files, Bytes: 1 << 62}, 1<<30, true); err != nil {
		return nil, err
	}
	res.UnwindowedRetry = retried
	res.RatioLimit = res.CarouselMBps / res.LimitMBps
	res.RatioUnwindowed = res.CarouselMBps / res.UnwindowedMBps
	return res, nil
}

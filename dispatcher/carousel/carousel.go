// Package carousel stages files from a tape endpoint through a sliding
// window: at most Files files and Bytes bytes are requested or held on the
// tape system's disk buffer at once, so that the buffer is never flooded,
// drives stay busy, and files reach disk in about the order they are needed.
// A file leaves the window when its user releases it.
package carousel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pando-wms/pando/plugins/storage/tape"
)

// Tape is what the carousel needs of a tape endpoint (tape.Endpoint has it).
type Tape interface {
	Stage(ctx context.Context, paths []string) (string, error)
	Poll(ctx context.Context, id string) ([]tape.FileState, error)
	Release(ctx context.Context, id string, paths []string) error
}

// File is one file to stage.
type File struct {
	Path string
	Size int64
}

// Window bounds what is in flight: requested, or on disk and not yet released.
type Window struct {
	Files int
	Bytes int64
}

// Config tunes a Carousel.
type Config struct {
	Window  Window
	Poll    time.Duration // between polls of the tape system; default 1s
	Retries int           // per file after the first failure; default 2
	Logger  *slog.Logger
}

// Carousel stages files in a window. Run it once per set of files.
type Carousel struct {
	t   Tape
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	inFiles  int
	inBytes  int64
	maxFiles int               // the most files in flight seen (for tests and benchmarks)
	maxBytes int64             // the most bytes in flight seen
	held     map[string]string // path → stage request ID, for release
	free     chan struct{}     // a release made room
}

// New makes a carousel over t.
func New(t Tape, cfg Config) *Carousel {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Carousel{t: t, cfg: cfg, log: cfg.Logger, held: map[string]string{}, free: make(chan struct{}, 1)}
}

// Result is the end of one file: on disk (Err nil) or given up.
type Result struct {
	File File
	Err  error
}

type pending struct {
	id    string
	files map[string]File
}

// Run stages files in order through the window and sends each result on
// out as it comes. It returns once every file has a result; files on disk
// stay in the window until Release.
func (c *Carousel) Run(ctx context.Context, files []File, out chan<- Result) error {
	queue := append([]File(nil), files...)
	tries := map[string]int{}
	var reqs []*pending
	left := len(files)
	tick := time.NewTicker(c.cfg.Poll)
	defer tick.Stop()
	for left > 0 {
		// Fill the window in order; a file larger than the whole window goes alone.
		var batch []File
		c.mu.Lock()
		for len(queue) > 0 {
			f := queue[0]
			fits := c.inFiles < c.cfg.Window.Files && (c.inBytes+f.Size <= c.cfg.Window.Bytes || c.inFiles == 0)
			if !fits {
				break
			}
			queue = queue[1:]
			c.inFiles++
			c.inBytes += f.Size
			c.maxFiles = max(c.maxFiles, c.inFiles)
			c.maxBytes = max(c.maxBytes, c.inBytes)
			batch = append(batch, f)
		}
		c.mu.Unlock()
		if len(batch) > 0 {
			paths := make([]string, len(batch))
			p := &pending{files: map[string]File{}}
			for i, f := range batch {
				paths[i] = f.Path
				p.files[f.Path] = f
			}
			id, err := c.t.Stage(ctx, paths)
			if err != nil {
				c.leave(batch...)
				queue = append(batch, queue...)
				c.log.Warn("carousel: stage request failed; will retry", "files", len(batch), "err", err)
			} else {
				p.id = id
				reqs = append(reqs, p)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-c.free:
		}
		// Poll every request with files still in it.
		kept := reqs[:0]
		for _, p := range reqs {
			states, err := c.t.Poll(ctx, p.id)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				c.log.Warn("carousel: poll failed", "request", p.id, "err", err)
				kept = append(kept, p)
				continue
			}
			for _, st := range states {
				f, ok := p.files[st.Path]
				if !ok {
					continue
				}
				switch st.State {
				case "COMPLETED":
					delete(p.files, st.Path)
					c.mu.Lock()
					c.held[f.Path] = p.id
					c.mu.Unlock()
					left--
					out <- Result{File: f}
				case "FAILED", "CANCELLED":
					delete(p.files, st.Path)
					c.leave(f)
					tries[f.Path]++
					if tries[f.Path] > c.cfg.Retries {
						left--
						out <- Result{File: f, Err: fmt.Errorf("carousel: %s: %s: %s", f.Path, st.State, st.Error)}
					} else {
						queue = append(queue, f) // behind the others: give the buffer time
					}
				}
			}
			if len(p.files) > 0 {
				kept = append(kept, p)
			}
		}
		reqs = kept
	}
	return nil
}

// leave takes files out of the window without a release (they never reached disk).
func (c *Carousel) leave(files ...File) {
	c.mu.Lock()
	for _, f := range files {
		c.inFiles--
		c.inBytes -= f.Size
	}
	c.mu.Unlock()
	c.wake()
}

func (c *Carousel) wake() {
	select {
	case c.free <- struct{}{}:
	default:
	}
}

// ErrNotHeld: Release of a file the carousel did not bring to disk, or released already.
var ErrNotHeld = errors.New("carousel: file not held")

// Release tells the tape system the file may leave its buffer, and frees
// its place in the window.
func (c *Carousel) Release(ctx context.Context, f File) error {
	c.mu.Lock()
	id, ok := c.held[f.Path]
	if ok {
		delete(c.held, f.Path)
	}
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotHeld, f.Path)
	}
	err := c.t.Release(ctx, id, []string{f.Path})
	c.leave(f)
	return err
}

// Peak is the most files and bytes that were in flight at once.
func (c *Carousel) Peak() Window {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Window{Files: c.maxFiles, Bytes: c.maxBytes}
}

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
	"strings"
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

// File is one file to stage. Files of one job (the same non-zero Job)
// are admitted one after another, never interleaved with another job's,
// so that a window full of files is never waiting for files outside it.
type File struct {
	Path string
	Size int64
	Job  int64
}

// group is a file's locality group: its top directory, which for tape
// paths names the file family (the emulator's cartridge).
func (f File) group() string {
	g, _, _ := strings.Cut(strings.TrimPrefix(f.Path, "/"), "/")
	return g
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
	// Streams is how many locality groups (tapes) are read at once,
	// ideally the drives; default 2. The window is filled from open groups
	// until they run dry, so that a drive reads a tape to its end instead
	// of remounting for every file in dataset order.
	Streams int
	// FirstCome admits files in the order given, without grouping them by
	// tape: first-come staging, the baseline `pando bench carousel`
	// compares the carousel with.
	FirstCome bool
	Logger    *slog.Logger
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
	retried  int               // files the tape system failed and were asked for again
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
	if cfg.Streams <= 0 {
		cfg.Streams = 2
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
	q := newAdmission(c.cfg.Streams)
	q.firstCome = c.cfg.FirstCome
	for _, f := range files {
		q.push(f)
	}
	tries := map[string]int{}
	var reqs []*pending
	left := len(files)
	tick := time.NewTicker(c.cfg.Poll)
	defer tick.Stop()
	for left > 0 {
		// Fill the window in order; a file larger than the whole window goes alone.
		var batch []File
		c.mu.Lock()
		for q.len() > 0 {
			i := q.pick()
			f := q.files[i]
			fits := c.inFiles < c.cfg.Window.Files && (c.inBytes+f.Size <= c.cfg.Window.Bytes || c.inFiles == 0)
			if !fits {
				break
			}
			q.take(i)
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
				q.requeue(batch)
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
						q.push(f) // behind the others: give the buffer time
						c.mu.Lock()
						c.retried++
						c.mu.Unlock()
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

// Retried is how many times a file failed on the tape system and was
// requested again (a buffer that overflowed, a drive error).
func (c *Carousel) Retried() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retried
}

// Peak is the most files and bytes that were in flight at once.
func (c *Carousel) Peak() Window {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Window{Files: c.maxFiles, Bytes: c.maxBytes}
}

// lookahead bounds the queued files scanned for each admission.
const lookahead = 4096

// admission orders queued files: first the rest of a job already started,
// then files of the open locality groups (at most streams of them, the one
// with the fewest files admitted so far first), then the oldest file,
// which opens its group.
type admission struct {
	files   []File
	streams int
	queued  map[string]int // queued files per group
	open    map[string]int // open groups: files admitted since opened
	jobLeft map[int64]int  // queued files per job
	partial int64          // a job with files admitted and files queued (0: none)
	// firstCome: every file in queue order (Config.FirstCome).
	firstCome bool
}

func newAdmission(streams int) *admission {
	return &admission{streams: streams, queued: map[string]int{}, open: map[string]int{}, jobLeft: map[int64]int{}}
}

func (a *admission) len() int { return len(a.files) }

func (a *admission) push(f File) {
	a.files = append(a.files, f)
	a.queued[f.group()]++
	if f.Job != 0 {
		a.jobLeft[f.Job]++
	}
}

// requeue puts files back at the front, in order (a stage request failed).
func (a *admission) requeue(fs []File) {
	a.files = append(append([]File(nil), fs...), a.files...)
	for _, f := range fs {
		a.queued[f.group()]++
		if f.Job != 0 {
			a.jobLeft[f.Job]++
		}
	}
}

// pick returns the index of the file to admit next; a.len() > 0.
func (a *admission) pick() int {
	if a.firstCome {
		return 0
	}
	n := min(len(a.files), lookahead)
	if a.partial != 0 {
		for i := range n {
			if a.files[i].Job == a.partial {
				return i
			}
		}
	}
	if len(a.open) < a.streams {
		for i := range n { // open another group, so that another drive reads
			if _, ok := a.open[a.files[i].group()]; !ok {
				return i
			}
		}
	}
	best, fewest := 0, 0
	for i := range n { // balance the open groups
		if k, ok := a.open[a.files[i].group()]; ok && (fewest == 0 || k < fewest) {
			best, fewest = i, k
		}
	}
	return best
}

// take removes file i from the queue and counts it as admitted.
func (a *admission) take(i int) File {
	f := a.files[i]
	a.files = append(a.files[:i], a.files[i+1:]...)
	g := f.group()
	a.open[g]++
	if a.queued[g]--; a.queued[g] == 0 {
		delete(a.queued, g)
		delete(a.open, g) // read to its end: a drive moves on
	}
	if f.Job != 0 {
		if a.jobLeft[f.Job]--; a.jobLeft[f.Job] == 0 {
			delete(a.jobLeft, f.Job)
			a.partial = 0
		} else {
			a.partial = f.Job
		}
	}
	return f
}

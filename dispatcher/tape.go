package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/pando-wms/pando/dispatcher/carousel"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/store"
)

// Default window of a tape endpoint's data carousel, unless its entry in
// the storage file sets window_files and window_bytes.
const (
	defaultWindowFiles = 64
	defaultWindowBytes = 64 << 30
)

// tapeStager is the data carousel of one tape endpoint: jobs whose inputs
// are on tape wait in pending while their files are staged through the
// endpoint's window; a job becomes ready once all its files are on disk,
// and a file is released (leaves the window) once no live job needs it.
type tapeStager struct {
	name string
	car  *carousel.Carousel
	win  carousel.Window
	srv  *Server
	log  *slog.Logger
	ctx  context.Context
	wg   *sync.WaitGroup

	mu    sync.Mutex
	files map[string]*tapeFile // by tape path /BUCKET/PATH
	jobs  map[int64][]string   // a job's tape paths, while it lives
}

type tapeFile struct {
	f      carousel.File
	users  map[int64]struct{} // live jobs that read it
	onDisk bool
	gone   bool // given up: the carousel could not stage it
}

// newTapeStagers makes a carousel for each tape endpoint of the storage set.
func (s *Server) newTapeStagers(ctx context.Context) {
	s.tapes = map[string]*tapeStager{}
	for name, ep := range s.cfg.Storage {
		t, ok := ep.(carousel.Tape)
		if !ok || ep.Kind() != "tape" {
			continue
		}
		win := carousel.Window{Files: defaultWindowFiles, Bytes: defaultWindowBytes}
		if w := s.cfg.Windows[name]; w.Files > 0 {
			win.Files = w.Files
		}
		if w := s.cfg.Windows[name]; w.Bytes > 0 {
			win.Bytes = w.Bytes
		}
		log := s.log.With("component", "carousel", "endpoint", name)
		s.tapes[name] = &tapeStager{name: name, win: win, srv: s, log: log, ctx: ctx, wg: &s.tapeWG,
			car:   carousel.New(t, carousel.Config{Window: win, Logger: log}),
			files: map[string]*tapeFile{}, jobs: map[int64][]string{}}
		log.Info("data carousel", "window_files", win.Files, "window_bytes", win.Bytes)
	}
}

func tapePathOf(f store.File) string { return "/" + f.Bucket + "/" + f.Path }

// want stages the tape files of jobs (by job ID): files already on disk
// count at once, files already in the window are shared, the rest enter it
// in order. Each job is made ready when its last file arrives.
func (ts *tapeStager) want(files map[int64][]store.File) {
	var batch []carousel.File
	var ready []int64
	order := slices.Sorted(maps.Keys(files)) // stage in job order
	ts.mu.Lock()
	for _, job := range order {
		fs := files[job]
		paths := make([]string, 0, len(fs))
		for _, f := range fs {
			p := tapePathOf(f)
			tf, ok := ts.files[p]
			if !ok {
				tf = &tapeFile{f: carousel.File{Path: p, Size: f.Size, Job: job}, users: map[int64]struct{}{}}
				ts.files[p] = tf
				batch = append(batch, tf.f)
			}
			tf.users[job] = struct{}{}
			paths = append(paths, p)
		}
		ts.jobs[job] = paths
		if ts.allOnDisk(job) {
			ready = append(ready, job)
		}
	}
	ts.mu.Unlock()
	if len(ready) > 0 {
		ts.srv.broker.MakeReady(ready)
	}
	if len(batch) == 0 {
		return
	}
	ts.log.Debug("staging", "files", len(batch))
	out := make(chan carousel.Result)
	ts.wg.Add(2)
	go func() {
		defer ts.wg.Done()
		defer close(out)
		if err := ts.car.Run(ts.ctx, batch, out); err != nil && ts.ctx.Err() == nil {
			ts.log.Error("carousel stopped", "err", err)
		}
	}()
	go func() {
		defer ts.wg.Done()
		for r := range out {
			ts.arrived(r)
		}
	}()
}

// allOnDisk reports whether every file of job is on disk. ts.mu is held.
func (ts *tapeStager) allOnDisk(job int64) bool {
	for _, p := range ts.jobs[job] {
		if !ts.files[p].onDisk {
			return false
		}
	}
	return true
}

// arrived takes a file's staging result: jobs whose files are all on disk
// become ready; jobs that need a file given up fail.
func (ts *tapeStager) arrived(r carousel.Result) {
	var ready, failed []int64
	ts.mu.Lock()
	tf := ts.files[r.File.Path]
	if tf == nil { // cannot happen: files leave the map only once staged or given up
		ts.mu.Unlock()
		return
	}
	if r.Err != nil {
		tf.gone = true
		for job := range tf.users {
			failed = append(failed, job)
		}
	} else {
		tf.onDisk = true
		for job := range tf.users {
			if ts.allOnDisk(job) {
				ready = append(ready, job)
			}
		}
	}
	unused := len(tf.users) == 0
	ts.mu.Unlock()
	if r.Err != nil {
		ts.log.Warn("input not staged from tape", "file", r.File.Path, "jobs", len(failed), "err", r.Err)
		for _, job := range failed {
			ts.srv.broker.FailPending(job, errcode.StageTape, fmt.Sprintf("input %s:%s could not be staged from tape: %v", ts.name, r.File.Path, r.Err))
		}
	}
	if len(ready) > 0 {
		ts.srv.broker.MakeReady(ready)
	}
	if unused && r.Err == nil { // its jobs ended while it was staged
		ts.release([]*tapeFile{tf})
	}
}

// ended drops a job that reached a final state: files no other live job
// needs leave the window.
func (ts *tapeStager) ended(job int64) {
	var free []*tapeFile
	ts.mu.Lock()
	for _, p := range ts.jobs[job] {
		tf := ts.files[p]
		delete(tf.users, job)
		if len(tf.users) == 0 && (tf.onDisk || tf.gone) {
			delete(ts.files, p)
			if tf.onDisk {
				free = append(free, tf)
			}
		}
	}
	delete(ts.jobs, job)
	ts.mu.Unlock()
	ts.release(free)
}

// release tells the tape system the files may leave its buffer. It runs
// in the background: it is called after commits and must not hold them up.
func (ts *tapeStager) release(files []*tapeFile) {
	if len(files) == 0 {
		return
	}
	ts.mu.Lock()
	for _, tf := range files {
		delete(ts.files, tf.f.Path)
	}
	ts.mu.Unlock()
	ts.wg.Add(1)
	go func() {
		defer ts.wg.Done()
		for _, tf := range files {
			if err := ts.car.Release(ts.ctx, tf.f); err != nil && ts.ctx.Err() == nil {
				ts.log.Warn("release staged file", "file", tf.f.Path, "err", err)
			}
		}
	}()
}

// jobEnded is the broker's JobEnded hook.
func (s *Server) jobEnded(job int64) {
	for _, ts := range s.tapes {
		ts.ended(job)
	}
}

// stageTape hands the tape inputs among files (by job) to their carousels.
func (s *Server) stageTape(files []store.File) {
	byEndpoint := map[string]map[int64][]store.File{}
	for _, f := range files {
		if _, ok := s.tapes[f.Endpoint]; !ok || f.Dir != store.Input {
			continue
		}
		if byEndpoint[f.Endpoint] == nil {
			byEndpoint[f.Endpoint] = map[int64][]store.File{}
		}
		byEndpoint[f.Endpoint][f.JobID] = append(byEndpoint[f.Endpoint][f.JobID], f)
	}
	for name, jobs := range byEndpoint {
		s.tapes[name].want(jobs)
	}
}

// isTape reports whether the named endpoint is a tape endpoint.
func (s *Server) isTape(name string) bool { _, ok := s.tapes[name]; return ok }

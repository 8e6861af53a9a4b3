package process

import (
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// pumps copy the payload's stdout and stderr pipes to the spec's writers.
type pumps struct {
	log    *slog.Logger
	reads  []*os.File
	dsts   []io.Writer
	writes []*os.File // the child's ends, closed by the parent right after the start
	wg     sync.WaitGroup
}

// newPumps returns the files to give the child as stdout and stderr: a pipe per writer, one
// shared pipe when both are the same writer (so its writes never race), /dev/null for nil.
func newPumps(stdout, stderr io.Writer, devnull *os.File, log *slog.Logger) (pp *pumps, out, errf *os.File, err error) {
	pp = &pumps{log: log}
	if out, err = pp.add(stdout, devnull); err != nil {
		pp.closeWriteEnds()
		pp.abort()
		return nil, nil, nil, err
	}
	if stdout != nil && sameWriter(stdout, stderr) {
		return pp, out, out, nil
	}
	if errf, err = pp.add(stderr, devnull); err != nil {
		pp.closeWriteEnds()
		pp.abort()
		return nil, nil, nil, err
	}
	return pp, out, errf, nil
}

func (pp *pumps) add(w io.Writer, devnull *os.File) (*os.File, error) {
	if w == nil {
		return devnull, nil
	}
	r, wf, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	pp.reads, pp.dsts, pp.writes = append(pp.reads, r), append(pp.dsts, w), append(pp.writes, wf)
	return wf, nil
}

func (pp *pumps) closeWriteEnds() {
	for _, f := range pp.writes {
		f.Close()
	}
	pp.writes = nil
}

// abort closes the read ends of pumps that never ran.
func (pp *pumps) abort() {
	for _, f := range pp.reads {
		f.Close()
	}
}

func (pp *pumps) run() {
	for i, r := range pp.reads {
		pp.wg.Go(func() { pump(r, pp.dsts[i], pp.log) })
	}
}

// wait returns when all output was copied, or grace after it was called if some process outside
// the payload's group still holds a pipe open: then the rest is dropped so Wait cannot hang.
func (pp *pumps) wait(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		pp.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	pp.log.Warn("payload output still open after its exit; dropping the rest", "grace", grace)
	for _, r := range pp.reads {
		r.SetReadDeadline(time.Now()) // ends a blocked Read; an error only means already closed
	}
	<-done
}

// pump writes each chunk as soon as it is read. It does not use io.Copy because a ReaderFrom
// writer would be handed the pipe and might buffer. A failing writer does not stop the reading:
// a full pipe would block the payload.
func pump(r *os.File, w io.Writer, log *slog.Logger) {
	defer r.Close()
	buf := make([]byte, 32<<10)
	var werr error
	for {
		n, err := r.Read(buf)
		if n > 0 && werr == nil {
			if _, werr = w.Write(buf[:n]); werr != nil {
				log.Warn("payload output writer failed; discarding the rest", "err", werr)
			}
		}
		if err != nil {
			return // io.EOF, or the deadline set by wait
		}
	}
}

// sameWriter compares two writers without panicking on uncomparable dynamic types.
func sameWriter(a, b io.Writer) (same bool) {
	defer func() {
		if recover() != nil {
			same = false
		}
	}()
	return a == b
}

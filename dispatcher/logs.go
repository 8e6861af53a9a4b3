package dispatcher

import (
	"fmt"
	"os"
	"path/filepath"
)

// logDir keeps each attempt's live output in DIR/logs/JOB.ATTEMPT.log.
type logDir struct {
	dir string
	max int64 // bytes kept per attempt
}

func (d *logDir) path(job int64, attempt int) string {
	return filepath.Join(d.dir, fmt.Sprintf("%d.%d.log", job, attempt))
}

// Path is where the output of one attempt is kept.
func (s *Server) LogPath(job int64, attempt int) string { return s.logs.path(job, attempt) }

// logFile is opened on the first chunk, so jobs without output cost nothing.
// It keeps at most max bytes: a payload's output must not fill the disk
// that holds the dispatcher's state.
type logFile struct {
	path    string
	max     int64
	written int64
	f       *os.File
	err     error
}

func (d *logDir) open(job int64, attempt int) *logFile {
	return &logFile{path: d.path(job, attempt), max: d.max}
}

func (l *logFile) write(p []byte) error {
	if l.f == nil && l.err == nil {
		l.f, l.err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if l.err != nil || l.written > l.max {
		return l.err
	}
	if room := l.max - l.written; int64(len(p)) > room {
		p = append(p[:room:room], fmt.Sprintf("\n[pando: output truncated at %d bytes]\n", l.max)...)
	}
	n, err := l.f.Write(p)
	l.written += int64(n)
	if l.written >= l.max {
		l.written = l.max + 1 // truncated: drop the rest
	}
	return err
}

func (l *logFile) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.err = os.ErrClosed
}

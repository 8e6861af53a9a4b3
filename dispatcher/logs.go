package dispatcher

import (
	"fmt"
	"os"
	"path/filepath"
)

// logDir keeps each attempt's live output in DIR/logs/JOB.ATTEMPT.log.
type logDir struct{ dir string }

func (d *logDir) path(job int64, attempt int) string {
	return filepath.Join(d.dir, fmt.Sprintf("%d.%d.log", job, attempt))
}

// Path is where the output of one attempt is kept.
func (s *Server) LogPath(job int64, attempt int) string { return s.logs.path(job, attempt) }

// logFile is opened on the first chunk, so jobs without output cost nothing.
type logFile struct {
	path string
	f    *os.File
	err  error
}

func (d *logDir) open(job int64, attempt int) *logFile {
	return &logFile{path: d.path(job, attempt)}
}

func (l *logFile) write(p []byte) error {
	if l.f == nil && l.err == nil {
		l.f, l.err = os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if l.err != nil {
		return l.err
	}
	_, err := l.f.Write(p)
	return err
}

func (l *logFile) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	l.err = os.ErrClosed
}

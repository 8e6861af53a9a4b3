package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/store"
)

// authorizeAction checks that p may kill or retry id (a task or a job).
// Another user's task or job is reported as not found, like a missing one.
func (s *Server) authorizeAction(ctx context.Context, p auth.Principal, id int64) error {
	if !p.Can(auth.KillAny) && !p.Can(auth.KillOwn) {
		return errorf(http.StatusForbidden, "role %s may not kill or retry work", p.Role)
	}
	_, err := s.ownedTask(ctx, p, id)
	if errors.Is(err, store.ErrNotFound) {
		_, err = s.ownedJob(ctx, p, id)
	}
	if errors.Is(err, store.ErrNotFound) {
		return &httpError{http.StatusNotFound, fmt.Sprintf("task or job %d not found", id), store.ErrNotFound}
	}
	return err
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.authorizeAction(r.Context(), p, id); err != nil {
		return err
	}
	kind, n, err := s.backend.Kill(r.Context(), id, p.Name)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ActionResponse{ID: id, Kind: kind, Affected: n})
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.authorizeAction(r.Context(), p, id); err != nil {
		return err
	}
	kind, n, err := s.backend.Retry(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ActionResponse{ID: id, Kind: kind, Affected: n})
}

// logPoll is how often a followed log is checked for new output.
const logPoll = 200 * time.Millisecond

// jobLogs streams an attempt's output; with follow it keeps streaming until
// the attempt ends.
func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	j, err := s.jobAt(r, p)
	if err != nil {
		return err
	}
	id := j.ID
	q, err := queryInts(r, "offset", "attempt")
	if err != nil {
		return err
	}
	offset, attempt := q[0], q[1]
	follow := r.URL.Query().Get("follow") == "true" || r.URL.Query().Get("follow") == "1"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	for {
		at := int(attempt)
		if at == 0 {
			at = j.Attempt
		}
		if at > 0 {
			n, err := copyFrom(w, s.backend.LogPath(id, at), offset)
			if err != nil {
				return nil // headers are sent; the client sees a short body
			}
			offset += n
			if n > 0 && flusher != nil {
				flusher.Flush()
			}
		}
		if !follow || !s.attemptLive(id, int(attempt)) {
			if follow && at > 0 {
				// one last read: output written just before the attempt ended
				_, _ = copyFrom(w, s.backend.LogPath(id, at), offset)
			}
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(logPoll):
		}
		if live, ok := s.backend.LiveJob(id); ok && attempt == 0 && live.Attempt != j.Attempt {
			j, offset = live, 0 // a new attempt started: follow it from its start
		}
	}
}

// attemptLive reports whether the job is live in the given attempt (0: any).
func (s *Server) attemptLive(id int64, attempt int) bool {
	j, ok := s.backend.LiveJob(id)
	return ok && (attempt == 0 || j.Attempt == attempt)
}

func copyFrom(w io.Writer, path string, offset int64) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, f)
}

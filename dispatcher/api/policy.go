package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/pando-wms/pando/dispatcher/auth"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
)

// maxPolicyBody bounds a queue or share request.
const maxPolicyBody = 64 << 10

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ReadPolicy) {
		return errorf(http.StatusForbidden, "role %s may not read queues", p.Role)
	}
	return writeJSON(w, http.StatusOK, s.backend.Queues())
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ReadPolicy) {
		return errorf(http.StatusForbidden, "role %s may not read queues", p.Role)
	}
	q, ok := s.backend.Queue(r.PathValue("name"))
	if !ok {
		return &httpError{http.StatusNotFound, fmt.Sprintf("queue %q not found", r.PathValue("name")), store.ErrNotFound}
	}
	return writeJSON(w, http.StatusOK, q)
}

// decodeQueue reads a queue definition; unknown keys are errors, so that a
// misspelt limit is not silently ignored.
func decodeQueue(r *http.Request) (queue.Queue, error) {
	var q queue.Queue
	d := json.NewDecoder(io.LimitReader(r.Body, maxPolicyBody))
	d.DisallowUnknownFields()
	if err := d.Decode(&q); err != nil {
		return q, errorf(http.StatusBadRequest, "bad queue: %v", err)
	}
	return q, nil
}

func (s *Server) createQueue(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ManagePolicy) {
		return errorf(http.StatusForbidden, "role %s may not create queues", p.Role)
	}
	q, err := decodeQueue(r)
	if err != nil {
		return err
	}
	info, err := s.backend.PutQueue(r.Context(), q, true)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, info)
}

func (s *Server) putQueue(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ManagePolicy) {
		return errorf(http.StatusForbidden, "role %s may not change queues", p.Role)
	}
	q, err := decodeQueue(r)
	if err != nil {
		return err
	}
	if q.Name == "" {
		q.Name = r.PathValue("name")
	}
	if q.Name != r.PathValue("name") {
		return errorf(http.StatusBadRequest, "queue name %q in the body differs from %q in the path", q.Name, r.PathValue("name"))
	}
	info, err := s.backend.PutQueue(r.Context(), q, false)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) listShares(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ReadPolicy) {
		return errorf(http.StatusForbidden, "role %s may not read shares", p.Role)
	}
	out := s.backend.Shares()
	if out == nil {
		out = []share.Status{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) setShare(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ManagePolicy) {
		return errorf(http.StatusForbidden, "role %s may not set shares", p.Role)
	}
	var req ShareRequest
	d := json.NewDecoder(io.LimitReader(r.Body, maxPolicyBody))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return errorf(http.StatusBadRequest, "bad share request: %v", err)
	}
	if req.Target <= 0 {
		return errorf(http.StatusBadRequest, "target %v must be above 0 and at most 100 percent (DELETE removes a target)", req.Target)
	}
	if err := s.backend.SetShare(r.Context(), r.PathValue("path"), req.Target); err != nil {
		return err
	}
	return s.listShares(w, r, p)
}

func (s *Server) unsetShare(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ManagePolicy) {
		return errorf(http.StatusForbidden, "role %s may not set shares", p.Role)
	}
	if err := s.backend.SetShare(r.Context(), r.PathValue("path"), 0); err != nil {
		return err
	}
	return s.listShares(w, r, p)
}

func (s *Server) why(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if err := canRead(p); err != nil {
		return err
	}
	j, err := s.jobAt(r, p)
	if err != nil {
		return err
	}
	id := j.ID
	if why, ok := s.backend.Why(id); ok {
		return writeJSON(w, http.StatusOK, why)
	}
	return writeJSON(w, http.StatusOK, Why{JobID: id, State: string(j.State),
		Summary: fmt.Sprintf("not waiting: the job is %s", j.State)})
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	if !p.Can(auth.ViewAgents) {
		return errorf(http.StatusForbidden, "role %s may not read metrics", p.Role)
	}
	s.backend.Metrics().ServeHTTP(w, r)
	return nil
}

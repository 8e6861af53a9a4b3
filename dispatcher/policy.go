package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/api"
	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
)

// shareRecord is a share target as the store keeps it.
type shareRecord struct {
	Path   string  `json:"path"`
	Target float64 `json:"target"`
}

// loadPolicy gives the broker the queues and share targets operators set
// before a restart.
func (s *Server) loadPolicy(ctx context.Context) error {
	qs, err := s.store.Objects(ctx, store.KindQueue)
	if err != nil {
		return fmt.Errorf("dispatcher: load queues: %w", err)
	}
	for _, o := range qs {
		var q queue.Queue
		if err := json.Unmarshal(o.Value, &q); err != nil {
			return fmt.Errorf("dispatcher: load queue %q: %w", o.Name, err)
		}
		if err := q.Normalize(); err != nil {
			return fmt.Errorf("dispatcher: load queue %q: %w", o.Name, err)
		}
		s.broker.PutQueue(q)
	}
	shares, err := s.store.Objects(ctx, store.KindShare)
	if err != nil {
		return fmt.Errorf("dispatcher: load shares: %w", err)
	}
	// Parents first (the store lists by path), so that each level checks
	// its sum as it did when it was set.
	for _, o := range shares {
		var r shareRecord
		if err := json.Unmarshal(o.Value, &r); err != nil {
			return fmt.Errorf("dispatcher: load share %q: %w", o.Name, err)
		}
		if err := s.broker.SetShare(o.Name, r.Target); err != nil {
			return fmt.Errorf("dispatcher: load share %q: %w", o.Name, err)
		}
	}
	return nil
}

// PutQueue creates (create) or replaces a queue and applies it at once.
func (s *Server) PutQueue(ctx context.Context, q queue.Queue, create bool) (broker.QueueInfo, error) {
	if err := q.Normalize(); err != nil {
		return broker.QueueInfo{}, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	exists := s.broker.HasQueue(q.Name)
	switch {
	case create && exists:
		return broker.QueueInfo{}, fmt.Errorf("%w: queue %q exists; change it with `pando queue set`", api.ErrConflict, q.Name)
	case !create && !exists:
		return broker.QueueInfo{}, fmt.Errorf("queue %q: %w (create it with `pando queue create %s`)", q.Name, store.ErrNotFound, q.Name)
	}
	q.Updated = time.Now().UTC()
	raw, err := json.Marshal(q)
	if err != nil {
		return broker.QueueInfo{}, err
	}
	if err := s.store.PutObject(ctx, store.Object{Kind: store.KindQueue, Name: q.Name, Value: raw, Updated: q.Updated}); err != nil {
		return broker.QueueInfo{}, fmt.Errorf("%w: store queue: %v", api.ErrUnavailable, err)
	}
	s.broker.PutQueue(q)
	s.log.Info("queue changed", "queue", q.Name, "status", q.Status, "created", create)
	info, _ := s.broker.Queue(q.Name)
	return info, nil
}

// Queues lists the queues with what their agents hold.
func (s *Server) Queues() []broker.QueueInfo { return s.broker.Queues() }

// Queue returns one queue.
func (s *Server) Queue(name string) (broker.QueueInfo, bool) { return s.broker.Queue(name) }

// SetShare sets (target > 0) or removes (target 0) a share's target,
// durably, and applies it at once.
func (s *Server) SetShare(ctx context.Context, path string, target float64) error {
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	prev, had := s.broker.ShareTarget(path)
	if target == 0 {
		if !had {
			return fmt.Errorf("share %q has no target: %w", path, store.ErrNotFound)
		}
		if err := s.store.DeleteObject(ctx, store.KindShare, path); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: store share: %v", api.ErrUnavailable, err)
		}
		return s.broker.UnsetShare(path)
	}
	if err := s.broker.SetShare(path, target); err != nil {
		return fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	raw, _ := json.Marshal(shareRecord{Path: path, Target: target})
	if err := s.store.PutObject(ctx, store.Object{Kind: store.KindShare, Name: path, Value: raw, Updated: time.Now().UTC()}); err != nil {
		if had { // undo: memory must not run ahead of the store here
			_ = s.broker.SetShare(path, prev)
		} else {
			_ = s.broker.UnsetShare(path)
		}
		return fmt.Errorf("%w: store share: %v", api.ErrUnavailable, err)
	}
	s.log.Info("share target set", "share", path, "target", target)
	return nil
}

// Shares reports every share's target and achieved fraction.
func (s *Server) Shares() []share.Status { return s.broker.Shares() }

// Why explains why a live job is not running.
func (s *Server) Why(id int64) (broker.Why, bool) { return s.broker.Why(id) }

// checkPlacement refuses a task naming a queue or share that does not exist.
func (s *Server) checkPlacement(spec *task.Spec) error {
	if spec.Queue != "" && !s.broker.HasQueue(spec.Queue) {
		return fmt.Errorf("%w: queue: unknown queue %q (known: %s)", api.ErrInvalid, spec.Queue, strings.Join(s.broker.QueueNames(), ", "))
	}
	if spec.Share != "" {
		if err := s.broker.ShareUsable(spec.Share); err != nil {
			return fmt.Errorf("%w: share: %v", api.ErrInvalid, err)
		}
	}
	return nil
}

// Metrics serves the Prometheus metrics.
func (s *Server) Metrics() http.Handler { return s.metrics.handler() }

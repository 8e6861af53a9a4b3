// Package harvester keeps pilots in batch systems for the queues of an HPC
// centre (or any site): each cycle it follows its workers' states, asks the
// dispatcher how much ready work fits a worker of each queue, submits new
// workers within the queue's limits, cancels queued ones no work is left
// for and reports every worker to the dispatcher (pando workers shows them).
// Its workers survive its restarts: it keeps them in a state file.
package harvester

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/agentconn"
	"github.com/pando-wms/pando/dispatcher/pki"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge"
	"github.com/pando-wms/pando/plugins/batch"
)

// keepEnded is how long a worker in a final state is still reported.
const keepEnded = 10 * time.Minute

// Worker is one batch job the harvester submitted, as kept in its state file.
type Worker struct {
	Name      string      `json:"name"`
	Queue     string      `json:"queue"`
	BatchID   string      `json:"batch_id"`
	State     batch.State `json:"state"`
	Reason    string      `json:"reason,omitempty"`
	ExitCode  int         `json:"exit_code,omitempty"`
	Submitted time.Time   `json:"submitted"`
	Updated   time.Time   `json:"updated"`
	Dir       string      `json:"dir"`
}

// Harvester runs the queues of a Config.
type Harvester struct {
	cfg     *Config
	log     *slog.Logger
	conn    *conn
	systems map[string]batch.System // by queue
	pilot   string                  // the pando binary for workers
	token   string                  // its file, absolute, for the workers
	ca      string
	state   string // the state file
	workers map[string]*Worker
	edge    *edge.Edge // nil unless configured
	target  string     // what pilots dial: the dispatcher, or the edge
	edgeCA  string
}

// New prepares a harvester: it reads the token, makes the batch systems
// and loads the workers a previous run left.
func New(cfg *Config, log *slog.Logger) (*Harvester, error) {
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "harvester")
	tok, err := os.ReadFile(cfg.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("harvester: token_file: %w", err)
	}
	tlsConf, err := pki.DialTLS(cfg.Dispatcher, cfg.CAFile, cfg.Pin, wire.ALPN)
	if err != nil {
		return nil, fmt.Errorf("harvester: dispatcher: %w", err)
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("harvester: work_dir: %w", err)
	}
	h := &Harvester{cfg: cfg, log: log, systems: map[string]batch.System{}, workers: map[string]*Worker{},
		state: filepath.Join(cfg.WorkDir, "workers.json")}
	if h.token, err = filepath.Abs(cfg.TokenFile); err != nil {
		return nil, err
	}
	if cfg.CAFile != "" {
		if h.ca, err = filepath.Abs(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	h.pilot = cfg.PilotCommand
	if h.pilot == "" {
		if h.pilot, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("harvester: find the pando binary for workers: %w (set pilot_command)", err)
		}
	}
	for _, q := range cfg.Queues {
		sys, err := batch.New(batch.Config{Kind: q.Batch, Timeout: q.Timeout, Template: q.Template})
		if err != nil {
			return nil, fmt.Errorf("harvester: queue %s: %w", q.Name, err)
		}
		h.systems[q.Name] = sys
	}
	name := cfg.Name
	if name == "" {
		hn, _ := os.Hostname()
		name = "harvester-" + hn
	}
	id, err := h.loadState(name)
	if err != nil {
		return nil, err
	}
	h.conn = &conn{addr: cfg.Dispatcher, token: strings.TrimSpace(string(tok)), name: name, id: id, tls: tlsConf, log: log}
	h.target = cfg.Dispatcher
	if e := cfg.Edge; e != nil {
		host, _, _ := net.SplitHostPort(e.Address)
		if e.DataDir, err = filepath.Abs(e.DataDir); err != nil { // pilots run elsewhere
			return nil, err
		}
		h.edge, err = edge.New(edge.Config{Listen: e.Listen, DataDir: e.DataDir, Hosts: append([]string{host}, e.Hosts...),
			Upstream: cfg.Dispatcher, Token: h.conn.token, TLS: tlsConf.Clone(), Name: name + "-edge", Logger: log,
			DataListen: e.DataListen, DataAllow: e.DataAllow, CacheBytes: e.cacheBytes})
		if err != nil {
			return nil, fmt.Errorf("harvester: %w", err)
		}
		h.target, h.edgeCA = e.Address, h.edge.CAFile()
	}
	return h, nil
}

// Run cycles until ctx ends. Workers keep running when the harvester stops.
func (h *Harvester) Run(ctx context.Context) error {
	defer h.conn.close()
	if h.edge != nil {
		ectx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.edge.Run(ectx) }()
		defer func() { stop(); <-done }()
	}
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		for _, q := range h.cfg.Queues {
			if err := h.cycle(ctx, q); err != nil {
				if errors.Is(err, agentconn.ErrRefused) {
					return err
				}
				if ctx.Err() == nil {
					h.log.Warn("cycle failed; next one in a while", "queue", q.Name, "err", err)
				}
			}
		}
		if err := h.saveState(); err != nil {
			h.log.Error("save state", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// cycle is one pass over a queue: follow, size, submit, cancel, report.
func (h *Harvester) cycle(ctx context.Context, q QueueConfig) error {
	sys := h.systems[q.Name]
	h.follow(ctx, q, sys)
	m, err := h.conn.ask(ctx, &wire.DemandQuery{Queue: q.Name, Cores: q.Worker.Cores, MemoryBytes: q.Worker.memory,
		WalltimeSecs: int64(q.Worker.walltime.Seconds()), GPUs: q.Worker.GPUs})
	if err != nil {
		return fmt.Errorf("demand: %w", err)
	}
	d, ok := m.(*wire.Demand)
	if !ok {
		return fmt.Errorf("demand: unexpected answer %T", m)
	}
	if d.Code != 0 {
		return fmt.Errorf("demand for queue %s refused: %s (code %d)", q.Name, d.Message, d.Code)
	}
	queued, running := h.count(q.Name)
	// Workers that would start with nothing to do go back first.
	if d.Ready == 0 {
		h.cancelQueued(ctx, q, sys, "no ready work for this queue")
	}
	need := (d.ReadyCores + q.Worker.Cores - 1) / q.Worker.Cores
	n := min(need-queued, q.MaxQueued-queued, q.MaxRunning-running-queued, q.RampUp)
	for i := 0; i < n; i++ {
		if err := h.submit(ctx, q, sys); err != nil {
			h.log.Warn("submit worker", "queue", q.Name, "err", err)
			break // the batch system refuses or is down: try next cycle
		}
	}
	if n > 0 || d.Ready > 0 {
		h.log.Debug("cycle", "queue", q.Name, "ready", d.Ready, "ready_cores", d.ReadyCores, "queued", queued, "running", running, "submitted", max(n, 0))
	}
	return h.report(ctx, q)
}

// follow updates the workers' states from the batch system, cancels stuck
// ones and forgets those that ended a while ago.
func (h *Harvester) follow(ctx context.Context, q QueueConfig, sys batch.System) {
	var ids []string
	for _, w := range h.workers {
		if w.Queue == q.Name && !w.State.Final() {
			ids = append(ids, w.BatchID)
		}
	}
	now := time.Now()
	if len(ids) > 0 {
		sts, err := sys.Status(ctx, ids)
		if err != nil {
			h.log.Warn("worker states", "queue", q.Name, "err", err)
		}
		for _, w := range h.workers {
			st, ok := sts[w.BatchID]
			if w.Queue != q.Name || !ok || (st.State == w.State && st.Reason == w.Reason) {
				continue
			}
			h.log.Info("worker", "queue", q.Name, "name", w.Name, "batch_id", w.BatchID, "state", st.State, "reason", st.Reason)
			w.State, w.Reason, w.ExitCode, w.Updated = st.State, st.Reason, st.ExitCode, now
		}
	}
	for name, w := range h.workers {
		switch {
		case w.Queue != q.Name:
		case w.State == batch.Queued && now.Sub(w.Submitted) > q.MaxQueueTime:
			h.cancel(ctx, sys, w, fmt.Sprintf("queued for more than %s", q.MaxQueueTime))
		case w.State == batch.Running && now.Sub(w.Updated) > q.Worker.walltime+10*time.Minute:
			h.cancel(ctx, sys, w, "ran past its walltime: stuck")
		case w.State.Final() && now.Sub(w.Updated) > keepEnded:
			if w.State == batch.Finished || w.State == batch.Cancelled {
				os.RemoveAll(w.Dir) // failed ones keep their logs
			}
			delete(h.workers, name)
		}
	}
}

func (h *Harvester) count(queue string) (queued, running int) {
	for _, w := range h.workers {
		if w.Queue != queue {
			continue
		}
		switch w.State {
		case batch.Queued:
			queued++
		case batch.Running:
			running++
		}
	}
	return queued, running
}

func (h *Harvester) cancelQueued(ctx context.Context, q QueueConfig, sys batch.System, why string) {
	for _, w := range h.workers {
		if w.Queue == q.Name && w.State == batch.Queued {
			h.cancel(ctx, sys, w, why)
		}
	}
}

func (h *Harvester) cancel(ctx context.Context, sys batch.System, w *Worker, why string) {
	if err := sys.Cancel(ctx, w.BatchID); err != nil {
		h.log.Warn("cancel worker", "name", w.Name, "batch_id", w.BatchID, "err", err)
		return
	}
	h.log.Info("worker cancelled", "name", w.Name, "batch_id", w.BatchID, "why", why)
	w.State, w.Reason, w.Updated = batch.Cancelled, why, time.Now()
}

// submit starts one worker: a pilot for the queue, sized as configured.
func (h *Harvester) submit(ctx context.Context, q QueueConfig, sys batch.System) error {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	name := fmt.Sprintf("%s-%s-%s", q.Name, time.Now().UTC().Format("0102T150405"), hex.EncodeToString(b[:]))
	abs, err := filepath.Abs(filepath.Join(h.cfg.WorkDir, q.Name, name))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	// The pilot drains before the batch system's walltime kills it.
	wall := q.Worker.walltime - min(5*time.Minute, q.Worker.walltime/10)
	cmd := []string{h.pilot, "pilot", "--dispatcher", h.target, "--token-file", h.token,
		"--queue", q.Name, "--name", name, "--cores", strconv.Itoa(q.Worker.Cores),
		"--memory", strconv.FormatInt(q.Worker.memory, 10), "--walltime", wall.String(),
		"--idle-exit", q.IdleExit.String(), "--workdir", filepath.Join(abs, "work")}
	switch {
	case h.edgeCA != "":
		cmd = append(cmd, "--ca-file", h.edgeCA)
	case h.ca != "":
		cmd = append(cmd, "--ca-file", h.ca)
	default:
		cmd = append(cmd, "--pin", h.cfg.Pin)
	}
	if e := h.cfg.Edge; e != nil && e.DataAddress != "" {
		cmd = append(cmd, "--input-proxy", "http://"+e.DataAddress)
	}
	cmd = append(cmd, q.PilotArgs...)
	w := batch.Worker{Name: name, Command: cmd, Cores: q.Worker.Cores, Memory: q.Worker.memory,
		Walltime: q.Worker.walltime, Queue: q.Partition, Dir: abs}
	id, err := sys.Submit(ctx, w)
	if err != nil {
		os.RemoveAll(abs)
		return err
	}
	now := time.Now()
	h.workers[name] = &Worker{Name: name, Queue: q.Name, BatchID: id, State: batch.Queued, Submitted: now, Updated: now, Dir: abs}
	h.log.Info("worker submitted", "queue", q.Name, "name", name, "batch", sys.Kind(), "batch_id", id)
	return h.saveState() // a worker submitted is a worker to follow, even after a crash
}

// report tells the dispatcher the queue's workers.
func (h *Harvester) report(ctx context.Context, q QueueConfig) error {
	rep := &wire.WorkerReport{Queue: q.Name, Batch: q.Batch, Workers: []wire.WorkerState{}}
	for _, w := range h.workers {
		if w.Queue == q.Name {
			rep.Workers = append(rep.Workers, wire.WorkerState{Name: w.Name, BatchID: w.BatchID, State: string(w.State),
				Reason: w.Reason, ExitCode: w.ExitCode, SubmittedUnix: w.Submitted.Unix(), UpdatedUnix: w.Updated.Unix()})
		}
	}
	m, err := h.conn.ask(ctx, rep)
	if err != nil {
		return fmt.Errorf("report workers: %w", err)
	}
	if ack, ok := m.(*wire.Ack); !ok || ack.Code != 0 {
		return fmt.Errorf("report workers refused: %+v", m)
	}
	return nil
}

// stateFile is what the harvester keeps across restarts.
type stateFile struct {
	AgentID string    `json:"agent_id"`
	Workers []*Worker `json:"workers"`
}

// loadState reads the state file, returning the harvester's agent ID (made
// on first start).
func (h *Harvester) loadState(name string) (string, error) {
	b, err := os.ReadFile(h.state)
	if errors.Is(err, os.ErrNotExist) {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(id[:]), nil
	}
	if err != nil {
		return "", fmt.Errorf("harvester: state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("harvester: state file %s: %w", h.state, err)
	}
	for _, w := range st.Workers {
		h.workers[w.Name] = w
	}
	h.log.Info("workers of a previous run", "count", len(st.Workers))
	return st.AgentID, nil
}

// saveState writes the state file atomically.
func (h *Harvester) saveState() error {
	st := stateFile{AgentID: h.conn.id}
	for _, w := range h.workers {
		st.Workers = append(st.Workers, w)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := h.state + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, h.state)
}

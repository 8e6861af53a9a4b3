// Package queue defines queues: the named groups of agents (a grid site's
// batch slots, an HPC centre's partition) that operators open, drain and
// limit while the dispatcher runs.
package queue

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pando-wms/pando/dispatcher/share"
)

// Default is the queue of agents that name none. It always exists.
const Default = "default"

// ErrInvalid marks a bad queue definition; the message says what is wrong.
var ErrInvalid = errors.New("invalid queue")

// Kind says what launches a queue's agents.
type Kind string

const (
	Grid Kind = "grid" // pilots in grid batch slots
	HPC  Kind = "hpc"  // pilots submitted by a harvester to an HPC batch system
)

// Status says what a queue's agents may take.
type Status string

const (
	// Online: any work the queue serves.
	Online Status = "online"
	// Test: only tasks that name this queue; work that names no queue
	// goes elsewhere.
	Test Status = "test"
	// Draining: no new work; running jobs finish.
	Draining Status = "draining"
	// Offline: no new work, and agents holding no jobs are refused at
	// connect.
	Offline Status = "offline"
)

// Queue is a queue's definition. Zero limits mean no limit.
type Queue struct {
	Name       string `json:"name" yaml:"name"`
	Kind       Kind   `json:"kind" yaml:"kind"`
	Status     Status `json:"status" yaml:"status"`
	MaxRunning int    `json:"max_running,omitempty" yaml:"max_running"`
	MaxCores   int    `json:"max_cores,omitempty" yaml:"max_cores"`
	MaxGPUJobs int    `json:"max_gpu_jobs,omitempty" yaml:"max_gpu_jobs"`
	// Shares lists the shares (and their sub-shares) whose work the queue
	// takes; empty: all.
	Shares  []string          `json:"shares,omitempty" yaml:"shares"`
	Labels  map[string]string `json:"labels,omitempty" yaml:"labels"`
	Updated time.Time         `json:"updated" yaml:"-"`
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

const maxName = 64

// CheckName reports whether name is a valid queue name.
func CheckName(name string) error {
	if len(name) > maxName || !nameRe.MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", ErrInvalid, name, maxName)
	}
	return nil
}

// Normalize fills defaults (kind grid, status online) and checks q.
func (q *Queue) Normalize() error {
	if err := CheckName(q.Name); err != nil {
		return err
	}
	if q.Kind == "" {
		q.Kind = Grid
	}
	if q.Status == "" {
		q.Status = Online
	}
	if q.Kind != Grid && q.Kind != HPC {
		return fmt.Errorf("%w: %s: kind %q: want grid or hpc", ErrInvalid, q.Name, q.Kind)
	}
	if !slices.Contains([]Status{Online, Test, Draining, Offline}, q.Status) {
		return fmt.Errorf("%w: %s: status %q: want online, test, draining or offline", ErrInvalid, q.Name, q.Status)
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"max_running", q.MaxRunning}, {"max_cores", q.MaxCores}, {"max_gpu_jobs", q.MaxGPUJobs}} {
		if l.v < 0 {
			return fmt.Errorf("%w: %s: %s %d is negative (0 means no limit)", ErrInvalid, q.Name, l.name, l.v)
		}
	}
	for _, s := range q.Shares {
		if err := share.CheckPath(s); err != nil {
			return fmt.Errorf("%w: %s: shares: %w", ErrInvalid, q.Name, err)
		}
	}
	for k := range q.Labels {
		if k == "" || len(k) > maxName || strings.ContainsAny(k, "=, \t\n") {
			return fmt.Errorf("%w: %s: label key %q: want 1-%d characters without '=', ',' or spaces", ErrInvalid, q.Name, k, maxName)
		}
	}
	return nil
}

// Serves reports whether the queue takes work of the share at path.
func (q *Queue) Serves(path string) bool {
	if len(q.Shares) == 0 {
		return true
	}
	for _, s := range q.Shares {
		if path == s || strings.HasPrefix(path, s+"/") {
			return true
		}
	}
	return false
}

// Open reports whether the queue's agents get new work.
func (q *Queue) Open() bool { return q.Status == Online || q.Status == Test }

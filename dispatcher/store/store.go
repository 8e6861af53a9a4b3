// Package store defines the dispatcher's durable state: tasks, jobs, their
// attempts and API tokens, behind one interface implemented by SQLite (the
// embedded default) and, later, PostgreSQL. The dispatcher keeps live jobs
// in memory and writes their changes here in group commits.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when a task, job or token does not exist.
var ErrNotFound = errors.New("not found")

// State is a job's state. See DESIGN.md for the state machine.
type State string

const (
	Pending   State = "pending"
	Ready     State = "ready"
	Assigned  State = "assigned"
	Running   State = "running"
	Finished  State = "finished"
	Failed    State = "failed"
	Cancelled State = "cancelled"
)

// Final reports whether s is a final state.
func (s State) Final() bool { return s == Finished || s == Failed || s == Cancelled }

// States lists every state in lifecycle order.
var States = []State{Pending, Ready, Assigned, Running, Finished, Failed, Cancelled}

// Task is a user's unit of work. Tasks and jobs draw their IDs from one
// sequence, so an ID names either a task or a job, never both.
type Task struct {
	ID          int64
	Owner       string
	Name        string
	Queue       string
	Priority    int
	Jobs        int
	MaxAttempts int
	// Spec is the task's JSON-encoded spec (dispatcher/task.Spec).
	Spec    []byte
	Created time.Time
}

// Job is one job of a task and the state of its current attempt.
type Job struct {
	ID      int64
	TaskID  int64
	Index   int
	State   State
	Attempt int // current attempt, 0 before the first assignment
	// MaxAttempts is the attempt number after which a retryable failure is
	// final; a user retry raises it.
	MaxAttempts int
	AgentID     string
	AgentName   string
	ExitCode    *int
	ErrorCode   int
	Error       string
	Created     time.Time
	Updated     time.Time
	Started     time.Time // current attempt, zero if not started
	Ended       time.Time // zero unless final
	// The current (or last) attempt's assignment time and usage. With the
	// fields above they are the record of the attempt that ended the job:
	// that attempt is kept in the job's row, not as an Attempt of its own
	// (see Store.Attempts).
	Assigned    time.Time
	CPUSeconds  float64
	MaxRSSBytes int64
}

// Attempt is the record of one attempt of a job.
type Attempt struct {
	JobID       int64
	Attempt     int
	AgentID     string
	AgentName   string
	State       State // running, finished, failed, cancelled
	ExitCode    *int
	ErrorCode   int
	Error       string
	Assigned    time.Time
	Started     time.Time
	Ended       time.Time
	CPUSeconds  float64
	MaxRSSBytes int64
}

// Batch is one group commit: new tasks with their jobs, then the new
// values of the mutable fields of each job (ID, TaskID, Index and Created
// are never changed), and attempt records to insert or replace (keyed by
// JobID and Attempt). A job may be inserted and updated in one batch.
type Batch struct {
	Tasks []NewTask
	// Archive names final jobs about to start a new attempt (a user
	// retry): before Jobs is applied, the attempt that ended each one,
	// which only its row holds, is stored as an Attempt unless one with
	// its number is stored already.
	Archive  []int64
	Jobs     []Job
	Attempts []Attempt
	// Files to insert or replace (keyed by JobID, Dir and Index): the
	// outputs of finished attempts.
	Files []File
}

// NewTask is a task to insert with its jobs, their IDs already taken from
// ReserveIDs: the task's ID, then its jobs' in order, and the jobs' input
// files.
type NewTask struct {
	Task  Task
	Jobs  []Job
	Files []File
}

// FileDir says whether a file is a job's input or output.
type FileDir string

const (
	Input  FileDir = "in"
	Output FileDir = "out"
)

// File is one input or output file of a job, with its size and adler32.
type File struct {
	JobID  int64
	TaskID int64
	Dir    FileDir
	Index  int    // position among the job's inputs or outputs
	Name   string // the name the payload sees (inputs) or its path in the work directory (outputs)
	// Where it is stored.
	Endpoint string
	Bucket   string
	Path     string
	Size     int64
	Adler32  string // 8 lowercase hex digits; empty when the storage recorded none
	Attempt  int    // outputs: the attempt that wrote them
}

// FileFilter selects files. Zero fields do not filter.
type FileFilter struct {
	JobID  int64
	TaskID int64
	Dir    FileDir
}

// TaskFilter selects tasks. Zero fields do not filter.
type TaskFilter struct {
	Owner   string
	AfterID int64 // tasks with a larger ID (paging)
	Limit   int   // 0: no limit
}

// JobFilter selects jobs. Zero fields do not filter.
type JobFilter struct {
	TaskID  int64
	Owner   string // owner of the job's task
	State   State
	AfterID int64
	Limit   int
}

// Role of a token's holder.
type Role string

const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleUser     Role = "user"
	RoleAgent    Role = "agent"
)

// Token is an API or agent credential. Only the SHA-256 hash of the secret
// is stored.
type Token struct {
	Hash    string // hex SHA-256 of the secret
	Name    string // the user, agent or operator it belongs to
	Role    Role
	Created time.Time
}

// Object is a piece of operator configuration kept in the store (a queue,
// a share target), so that it survives restarts and is shared by
// dispatchers on one database. Value is its JSON encoding.
type Object struct {
	Kind    string
	Name    string
	Value   []byte
	Updated time.Time
}

// Kinds of Object.
const (
	KindQueue = "queue"
	KindShare = "share"
)

// Pipelined is implemented by stores that can split a group commit in two,
// so that the next batch is written while the last one is being flushed:
// Write applies a batch atomically and makes it visible to readers and to
// a process that restarts after a crash of this one, but it may be lost to
// a power failure until Sync returns; Sync makes every batch written
// before it was called durable. Apply is Write then Sync. A Sync that
// fails leaves unknown which of those batches survive a power failure; the
// caller must not report any of them durable, nor trust a later Sync to
// cover them (the kernel may have dropped the pages it could not write).
type Pipelined interface {
	Write(ctx context.Context, b *Batch) error
	Sync(ctx context.Context) error
}

// Store is the dispatcher's durable state. Implementations are safe for
// concurrent use.
type Store interface {
	// CreateTask stores a task and its jobs in one transaction, filling in
	// t.ID and each job's ID and TaskID from the shared ID sequence.
	CreateTask(ctx context.Context, t *Task, jobs []Job) error
	// ReserveIDs takes n consecutive IDs from the shared sequence for the
	// caller to assign (Batch.Tasks) and returns the first. IDs reserved and
	// never used leave a gap between tasks, never inside one.
	ReserveIDs(ctx context.Context, n int64) (int64, error)
	// Apply writes one group commit atomically.
	Apply(ctx context.Context, b *Batch) error

	Task(ctx context.Context, id int64) (*Task, error)
	Tasks(ctx context.Context, f TaskFilter) ([]Task, error)
	// TaskCounts returns how many jobs of the task are in each state.
	TaskCounts(ctx context.Context, taskID int64) (map[State]int, error)
	Job(ctx context.Context, id int64) (*Job, error)
	Jobs(ctx context.Context, f JobFilter) ([]Job, error)
	// Attempts returns the job's ended attempts by number: those stored
	// as Attempts and, for a final job whose last attempt is not among
	// them, that attempt as its row records it (its State is the job's).
	// A live job's current attempt is in its row until it ends.
	Attempts(ctx context.Context, jobID int64) ([]Attempt, error)
	// Files returns files by job, direction and index.
	Files(ctx context.Context, f FileFilter) ([]File, error)
	// LiveJobs returns every job not in a final state, for a restart.
	LiveJobs(ctx context.Context) ([]Job, error)
	// LiveTasks returns every task that has a job not in a final state.
	LiveTasks(ctx context.Context) ([]Task, error)

	CreateToken(ctx context.Context, t Token) error
	TokenByHash(ctx context.Context, hash string) (*Token, error)

	// PutObject stores o, replacing the object of the same kind and name.
	PutObject(ctx context.Context, o Object) error
	// DeleteObject removes an object; ErrNotFound if there is none.
	DeleteObject(ctx context.Context, kind, name string) error
	// Objects returns the objects of a kind by name.
	Objects(ctx context.Context, kind string) ([]Object, error)

	Close() error
}

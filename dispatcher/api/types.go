// Package api is the dispatcher's HTTP API, /api/v1, in JSON. This file
// holds the request and response types shared by the server and the client;
// their JSON keys are a contract with users and scripts.
//
// Endpoints (all need "Authorization: Bearer TOKEN"):
//
//	POST /api/v1/tasks              body: a task file (YAML or JSON) -> 201 SubmitResponse
//	GET  /api/v1/tasks              ?limit=N&after=ID -> []Task (own tasks; operator/admin: all)
//	GET  /api/v1/tasks/{id}         -> Task with Spec
//	GET  /api/v1/jobs               ?task=ID&state=S&limit=N&after=ID -> []Job
//	GET  /api/v1/jobs/{id}          -> Job with Attempts
//	GET  /api/v1/jobs/{id}/logs     ?follow=true&offset=N&attempt=N -> text/plain, streamed while
//	                                the attempt runs when follow is set
//	POST /api/v1/kill/{id}          id of a task or a job -> ActionResponse
//	POST /api/v1/retry/{id}         id of a task or a job -> ActionResponse
//	POST /api/v1/tokens             TokenRequest -> TokenResponse (admin only)
//	GET  /api/v1/whoami             -> Whoami
//	GET  /api/v1/agents             -> []Agent (operator and admin)
//	GET  /api/v1/workers            ?queue=Q -> []Worker, as harvesters last reported them (operator and admin)
//	GET  /api/v1/queues             -> []Queue (all roles but agent)
//	GET  /api/v1/queues/{name}      -> Queue
//	POST /api/v1/queues             body: queue.Queue -> 201 Queue (operator and admin; 409 if it exists)
//	PUT  /api/v1/queues/{name}      body: queue.Queue -> Queue, replacing the definition (operator and admin)
//	GET  /api/v1/shares             -> []share.Status (all roles but agent)
//	PUT  /api/v1/shares/{path}      body: ShareRequest -> []share.Status (operator and admin)
//	DELETE /api/v1/shares/{path}    removes the share's target -> []share.Status (operator and admin)
//	GET  /api/v1/jobs/{id}/why      -> Why: why a waiting job does not run
//	GET  /metrics                   Prometheus text format (operator and admin)
//
// Errors come as ErrorResponse with a 4xx or 5xx status. A task or job of
// another user is reported as not found.
package api

import (
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// Queue is a queue's definition and what its agents hold now.
type Queue = broker.QueueInfo

// Why explains why a job does not run.
type Why = broker.Why

// ShareRequest sets a share's target, in percent of its parent.
type ShareRequest struct {
	Target float64 `json:"target"`
}

// Prefix is the path prefix of every endpoint.
const Prefix = "/api/v1"

// SubmitResponse answers a task submission.
type SubmitResponse struct {
	ID   int64 `json:"id"`
	Jobs int   `json:"jobs"`
}

// Task is a task with its jobs counted by state.
type Task struct {
	ID       int64          `json:"id"`
	Name     string         `json:"name"`
	Owner    string         `json:"owner"`
	Queue    string         `json:"queue,omitempty"`
	Priority int            `json:"priority"`
	State    string         `json:"state"` // derived from the jobs' states
	Jobs     int            `json:"jobs"`
	Counts   map[string]int `json:"counts"` // job state -> number of jobs
	Created  time.Time      `json:"created"`
	Spec     *task.Spec     `json:"spec,omitempty"` // only on GET /tasks/{id}
}

// Job is one job and its current attempt.
type Job struct {
	ID          int64      `json:"id"`
	Task        int64      `json:"task"`
	Index       int        `json:"index"`
	State       string     `json:"state"`
	Attempt     int        `json:"attempt"`
	MaxAttempts int        `json:"max_attempts"`
	ExitCode    *int       `json:"exit_code"`
	ErrorCode   int        `json:"error_code"`
	ErrorName   string     `json:"error_name,omitempty"`
	Error       string     `json:"error"`
	Agent       string     `json:"agent,omitempty"`
	Created     time.Time  `json:"created"`
	Updated     time.Time  `json:"updated"`
	Started     *time.Time `json:"started,omitempty"`
	Ended       *time.Time `json:"ended,omitempty"`
	Attempts    []Attempt  `json:"attempts,omitempty"` // only on GET /jobs/{id}
	Inputs      []File     `json:"inputs,omitempty"`   // only on GET /jobs/{id}
	Outputs     []File     `json:"outputs,omitempty"`  // only on GET /jobs/{id}
}

// File is one input or output file of a job.
type File struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Adler32  string `json:"adler32"`
	Attempt  int    `json:"attempt,omitempty"` // outputs: the attempt that wrote it
}

// Attempt is one past or current attempt of a job.
type Attempt struct {
	Attempt     int        `json:"attempt"`
	State       string     `json:"state"`
	Agent       string     `json:"agent,omitempty"`
	ExitCode    *int       `json:"exit_code"`
	ErrorCode   int        `json:"error_code"`
	ErrorName   string     `json:"error_name,omitempty"`
	Error       string     `json:"error"`
	Assigned    time.Time  `json:"assigned"`
	Started     *time.Time `json:"started,omitempty"`
	Ended       *time.Time `json:"ended,omitempty"`
	CPUSeconds  float64    `json:"cpu_seconds,omitempty"`
	MaxRSSBytes int64      `json:"max_rss_bytes,omitempty"`
}

// Worker is one batch worker (a pilot in a batch job) of a harvester.
type Worker struct {
	Harvester string    `json:"harvester"`
	Queue     string    `json:"queue"`
	Batch     string    `json:"batch"` // the batch system's kind
	Name      string    `json:"name"`  // also its pilot's name
	BatchID   string    `json:"batch_id"`
	State     string    `json:"state"` // queued, running, finished, failed, cancelled, missing
	Reason    string    `json:"reason,omitempty"`
	ExitCode  int       `json:"exit_code,omitempty"`
	Submitted time.Time `json:"submitted"`
	Updated   time.Time `json:"updated"`  // its state last changed
	Reported  time.Time `json:"reported"` // the harvester last reported
}

// ActionResponse answers kill and retry.
type ActionResponse struct {
	ID       int64  `json:"id"`
	Kind     string `json:"kind"`     // "task" or "job"
	Affected int    `json:"affected"` // jobs whose state changed
}

// TokenRequest asks for a new token.
type TokenRequest struct {
	Role string `json:"role"`
	Name string `json:"name"`
}

// TokenResponse carries a new token; the secret is shown only once.
type TokenResponse struct {
	Token string `json:"token"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// Whoami describes the caller.
type Whoami struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// Agent is a connected (or recently lost) agent.
type Agent struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	Queue     string         `json:"queue,omitempty"`
	Connected bool           `json:"connected"`
	Since     time.Time      `json:"since"`
	Running   int            `json:"running"`
	Resources wire.Resources `json:"resources"`
}

// ErrorResponse is the body of every error status.
type ErrorResponse struct {
	Error string `json:"error"`
}

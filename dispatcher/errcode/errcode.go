// Package errcode is the one table of numbered error codes that pilots,
// payload runtimes and the dispatcher report. A code's class is its
// thousands digit; whether a failed attempt is retried depends on the code.
package errcode

import (
	"errors"
	"fmt"
	"sort"
)

// Code is a numbered error. 0 means no error.
type Code int

// Classes group codes by who detected the failure.
const (
	ClassPilot      = "pilot"
	ClassPayload    = "payload"
	ClassDispatcher = "dispatcher"
	ClassStaging    = "staging"
	ClassContainer  = "container"
)

// The table. Numbers are a contract with users and scripts: never renumber.
const (
	OK Code = 0

	// Pilot: the agent could not run the job for reasons of its own.
	PilotWorkdir     Code = 1001 // could not create the job's work directory
	PilotStartFailed Code = 1002 // the runtime failed to start the payload
	PilotShutdown    Code = 1003 // the pilot was stopped or drained while the job ran
	PilotNoRuntime   Code = 1004 // the job needs a runtime this pilot lacks
	PilotLostReport  Code = 1005 // the pilot lost track of the payload

	// Payload: the user's program misbehaved.
	PayloadExit     Code = 2001 // exited with a non-zero status
	PayloadSignal   Code = 2002 // killed by a signal it did not ask for
	PayloadWalltime Code = 2003 // ran past its walltime and was killed
	PayloadNotFound Code = 2004 // the command does not exist or is not executable
	PayloadOOM      Code = 2005 // killed for exceeding its memory limit
	PayloadImage    Code = 2006 // its container image is missing and could not be pulled or loaded

	// Dispatcher: decisions taken centrally.
	DispatcherKilled    Code = 3001 // killed by a user or operator
	DispatcherAgentLost Code = 3002 // the agent stopped heartbeating and did not come back
	DispatcherStale     Code = 3003 // a report for an attempt that is no longer current
	DispatcherAgentGone Code = 3004 // the agent reconnected without the job
	DispatcherBadQueue  Code = 3005 // an agent's request names a queue that does not exist

	// Staging: moving a job's inputs and outputs.
	StageInFailed     Code = 4001 // an input could not be downloaded
	StageInChecksum   Code = 4002 // an input's size or adler32 did not match what is recorded
	StageOutFailed    Code = 4003 // an output could not be uploaded or was not stored whole
	StageInputMissing Code = 4004 // an input no longer exists on its endpoint
	StageTape         Code = 4005 // an input could not be staged from tape by the data carousel
)

type entry struct {
	name      string
	class     string
	retryable bool
	text      string
}

var table = map[Code]entry{
	OK:                  {"ok", "", false, "no error"},
	PilotWorkdir:        {"pilot_workdir", ClassPilot, true, "could not create the job's work directory"},
	PilotStartFailed:    {"pilot_start_failed", ClassPilot, true, "the runtime failed to start the payload"},
	PilotShutdown:       {"pilot_shutdown", ClassPilot, true, "the pilot was stopped while the job ran"},
	PilotNoRuntime:      {"pilot_no_runtime", ClassPilot, true, "the job needs a runtime this pilot lacks"},
	PilotLostReport:     {"pilot_lost_report", ClassPilot, true, "the pilot lost track of the payload"},
	PayloadExit:         {"payload_exit", ClassPayload, true, "the payload exited with a non-zero status"},
	PayloadSignal:       {"payload_signal", ClassPayload, true, "the payload was killed by a signal"},
	PayloadWalltime:     {"payload_walltime", ClassPayload, false, "the payload ran past its walltime"},
	PayloadNotFound:     {"payload_not_found", ClassPayload, false, "the payload command was not found"},
	PayloadOOM:          {"payload_oom", ClassPayload, false, "the payload exceeded its memory limit"},
	PayloadImage:        {"image_not_found", ClassPayload, true, "the container image could not be found, pulled or loaded"},
	DispatcherKilled:    {"killed", ClassDispatcher, false, "killed by request"},
	DispatcherAgentLost: {"agent_lost", ClassDispatcher, true, "the agent running the job was lost"},
	DispatcherStale:     {"stale_attempt", ClassDispatcher, false, "the attempt is no longer current"},
	DispatcherAgentGone: {"agent_dropped_job", ClassDispatcher, true, "the agent reconnected without the job"},
	DispatcherBadQueue:  {"bad_queue", ClassDispatcher, false, "the queue does not exist"},
	StageInFailed:       {"stagein_failed", ClassStaging, true, "an input file could not be downloaded"},
	StageInChecksum:     {"stagein_checksum", ClassStaging, true, "an input file did not match its recorded size or adler32"},
	StageOutFailed:      {"stageout_failed", ClassStaging, true, "an output file could not be uploaded"},
	StageInputMissing:   {"input_missing", ClassStaging, false, "an input file no longer exists on its endpoint"},
	StageTape:           {"tape_stage_failed", ClassStaging, false, "an input file could not be staged from tape"},
}

// Known reports whether c is in the table.
func (c Code) Known() bool { _, ok := table[c]; return ok }

// Name is the code's short stable name, e.g. "payload_exit".
func (c Code) Name() string {
	if e, ok := table[c]; ok {
		return e.name
	}
	return fmt.Sprintf("code_%d", int(c))
}

// Class is who detected the failure.
func (c Code) Class() string { return table[c].class }

// Retryable reports whether an attempt that ended with c may be retried.
// Unknown codes are retryable: an agent newer than the dispatcher should
// not turn its failures into final ones.
func (c Code) Retryable() bool {
	if e, ok := table[c]; ok {
		return e.retryable
	}
	return true
}

// Text is a one-line description.
func (c Code) Text() string {
	if e, ok := table[c]; ok {
		return e.text
	}
	return "unknown error code"
}

func (c Code) String() string { return fmt.Sprintf("%d (%s)", int(c), c.Name()) }

// Entry is one row of the table, for listings.
type Entry struct {
	Code      Code   `json:"code"`
	Name      string `json:"name"`
	Class     string `json:"class"`
	Retryable bool   `json:"retryable"`
	Text      string `json:"text"`
}

// Table lists every code in numeric order.
func Table() []Entry {
	out := make([]Entry, 0, len(table))
	for c, e := range table {
		out = append(out, Entry{c, e.name, e.class, e.retryable, e.text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// Error is an error carrying a code.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code.Text()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) error {
	return &Error{Code: c, Err: fmt.Errorf(format, args...)}
}

// Of returns the code carried by err, or fallback when it carries none.
func Of(err error, fallback Code) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return fallback
}

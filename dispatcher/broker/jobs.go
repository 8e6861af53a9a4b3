package broker

import (
	"container/heap"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/share"
	"github.com/pando-wms/pando/dispatcher/store"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
	"github.com/pando-wms/pando/edge/cache"
)

// Errors returned to callers. Refusals of agent reports carry an errcode.
var (
	ErrUnknownJob = errors.New("job is not live")
	ErrStale      = errors.New("attempt is no longer current")
)

// taskState is the part of a task that matching and assignment need.
type taskState struct {
	id          int64
	owner       string
	queue       string
	priority    int
	maxAttempts int
	res         wire.JobResources
	command     []string
	env         map[string]string
	image       string
	network     bool
	created     time.Time
	// Data: each live job's inputs (URLs are presigned per attempt, on the
	// way out), the output patterns and where outputs go.
	inputs   map[int64][]wire.InputFile
	cacheIDs map[int64][]string // the node cache IDs of each job's inputs
	outputs  *task.Outputs
	patterns []string
	stream   bool

	// Matching: the share its jobs count against, its rank in the share
	// (priority with aging), constraints beyond counts.
	share      *share.Node
	rank       float64
	gpuModel   *regexp.Regexp
	gpuCompute int // minimum compute capability, major*100+minor
	accel      string
	arch       string

	live     int         // jobs not in a final state
	nready   int         // jobs queued in the index
	nrunning int         // jobs assigned or running
	ready    []*jobState // FIFO of queued jobs (may hold stale entries)
	indexed  bool
	noFit    uint64 // the match generation in which it did not fit

	reservedBy int // agents draining for it
}

// readySince returns when t's oldest queued job became ready; false if
// none of the first few entries of t.ready is queued (stale entries are
// dropped lazily by pop).
func (t *taskState) readySince() (time.Time, bool) {
	for _, j := range t.ready[:min(len(t.ready), 16)] {
		if j.state == stateReady && j.queued {
			return j.readySince, true
		}
	}
	return time.Time{}, false
}

// jobState is one live job.
type jobState struct {
	id          int64
	task        *taskState
	index       int
	state       store.State
	attempt     int
	maxAttempts int
	agent       *agentState
	exitCode    *int
	errCode     int
	errText     string
	created     time.Time
	updated     time.Time
	started     time.Time
	ended       time.Time
	readyAt     time.Time // retry back-off
	readySince  time.Time // when it last became ready
	queued      bool      // in its task's ready list
	charge      share.Charge
	runQ        *queueState // the queue whose limits its attempt counts against

	cur          store.Attempt // record of the current attempt
	attemptDirty bool
}

func (j *jobState) record() store.Job {
	r := store.Job{
		ID: j.id, TaskID: j.task.id, Index: j.index, State: j.state,
		Attempt: j.attempt, MaxAttempts: j.maxAttempts, ExitCode: j.exitCode,
		ErrorCode: j.errCode, Error: j.errText, Created: j.created,
		Updated: j.updated, Started: j.started, Ended: j.ended,
	}
	if j.agent != nil {
		r.AgentID, r.AgentName = j.agent.id, j.agent.name
	} else {
		r.AgentID, r.AgentName = j.cur.AgentID, j.cur.AgentName
	}
	// The row holds the current attempt, and so the record of the one that
	// ends the job (see finish).
	r.Assigned, r.CPUSeconds, r.MaxRSSBytes = j.cur.Assigned, j.cur.CPUSeconds, j.cur.MaxRSSBytes
	return r
}

func (b *Broker) newTaskState(t store.Task, spec *task.Spec) *taskState {
	ts := &taskState{
		id: t.ID, owner: t.Owner, queue: t.Queue, priority: t.Priority,
		maxAttempts: t.MaxAttempts, command: spec.Command, env: spec.Env,
		image: spec.Image, network: spec.Network, created: t.Created,
		res: JobResources(spec.Resources), outputs: spec.Outputs, stream: spec.Stream,
		rank:  rankOf(t.Priority, t.Created, b.cfg.Aging),
		share: b.shares.Leaf(shareOf(spec)),
		accel: spec.Resources.Accelerator, arch: normArch(spec.Resources.Arch),
	}
	if spec.Outputs != nil {
		ts.patterns = spec.Outputs.Patterns
	}
	if m := spec.Resources.GPUModel; m != "" {
		// Validated at submit; a spec stored by an older version that does
		// not compile matches no GPU rather than every GPU.
		re, err := regexp.Compile(m)
		if err != nil {
			re = regexp.MustCompile(`$.^`)
		}
		ts.gpuModel = re
	}
	ts.gpuCompute = ts.res.GPUCompute
	return ts
}

// shareOf is the share a task's jobs count against.
func shareOf(spec *task.Spec) string {
	if spec.Share == "" {
		return share.Default
	}
	return spec.Share
}

// addFiles keeps the inputs among files (sorted by job and index).
func (ts *taskState) addFiles(files []store.File) {
	for _, f := range files {
		if f.Dir != store.Input {
			continue
		}
		if ts.inputs == nil {
			ts.inputs, ts.cacheIDs = make(map[int64][]wire.InputFile), make(map[int64][]string)
		}
		if f.Index == 0 { // replace, not add to, what an earlier load kept
			ts.inputs[f.JobID], ts.cacheIDs[f.JobID] = nil, nil
		}
		src := task.FileRef{Endpoint: f.Endpoint, Bucket: f.Bucket, Path: f.Path}.String()
		ts.inputs[f.JobID] = append(ts.inputs[f.JobID], wire.InputFile{Name: f.Name, Size: f.Size, Adler32: f.Adler32, Source: src})
		ts.cacheIDs[f.JobID] = append(ts.cacheIDs[f.JobID], cache.InputKey(src, f.Adler32, f.Size).ID())
	}
}

// JobResources is what each job of a task asks of an agent, as Assign carries it.
func JobResources(r task.Resources) wire.JobResources {
	compute, _ := task.ParseCompute(r.GPUCompute) // validated at submit; "" gives 0
	return wire.JobResources{
		Cores: r.Cores, MemoryBytes: r.MemoryBytes, WalltimeSecs: int64(r.Walltime / time.Second),
		GPUs: r.GPUs, GPUModel: r.GPUModel, GPUMemory: r.GPUMemory, Accelerator: r.Accelerator,
		GPUCompute: compute,
	}
}

func (b *Broker) taskFor(t store.Task, spec *task.Spec) *taskState {
	ts, ok := b.tasks[t.ID]
	if !ok {
		ts = b.newTaskState(t, spec)
		b.tasks[t.ID] = ts
	}
	return ts
}

func (b *Broker) adopt(ts *taskState, r store.Job) *jobState {
	j := &jobState{
		id: r.ID, task: ts, index: r.Index, state: r.State, attempt: r.Attempt,
		maxAttempts: r.MaxAttempts, exitCode: r.ExitCode, errCode: r.ErrorCode,
		errText: r.Error, created: r.Created, updated: r.Updated,
		started: r.Started, ended: r.Ended,
	}
	if j.maxAttempts == 0 {
		j.maxAttempts = ts.maxAttempts
	}
	b.jobs[j.id] = j
	ts.live++
	return j
}

// Submit takes a new task (with its jobs and their input files) whose IDs
// the caller reserved: it is inserted by the next group commit, and done is
// called once it is durable. Its jobs are matched at once; their
// assignments ride in the same commit.
func (b *Broker) Submit(nt store.NewTask, spec *task.Spec, done func(error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	b.newTasks = append(b.newTasks, nt)
	b.afterCommit(done)
	b.addTask(nt.Task, spec, nt.Jobs, nt.Files)
}

// AddTask takes an already stored task's jobs (all ready) into the index
// and offers them to waiting agents.
func (b *Broker) AddTask(t store.Task, spec *task.Spec, jobs []store.Job) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	b.addTask(t, spec, jobs, nil)
}

func (b *Broker) addTask(t store.Task, spec *task.Spec, jobs []store.Job, files []store.File) {
	ts := b.taskFor(t, spec)
	ts.addFiles(files)
	for _, r := range jobs {
		j := b.adopt(ts, r)
		if j.state == stateReady {
			b.enqueue(j)
		}
	}
	b.feedHungry(ts.queue)
}

// Recover loads the live jobs of a restarted dispatcher. Jobs that were
// assigned or running belong to agents that must reconnect within
// AgentTimeout+Grace (they may be backing off) to re-attach them, or they
// are retried. files holds the input files of each task, by task ID.
func (b *Broker) Recover(tasks map[int64]store.Task, specs map[int64]*task.Spec, jobs []store.Job, files map[int64][]store.File) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lostBy := b.cfg.Now().Add(b.cfg.AgentTimeout + b.cfg.Grace)
	for _, r := range jobs {
		t, ok := tasks[r.TaskID]
		if !ok {
			b.log.Error("live job without task", "job", r.ID, "task", r.TaskID)
			continue
		}
		ts, known := b.tasks[t.ID]
		if !known {
			ts = b.taskFor(t, specs[t.ID])
			ts.addFiles(files[t.ID])
		}
		j := b.adopt(ts, r)
		assigned := r.Assigned
		if assigned.IsZero() { // a row written before jobs kept it
			assigned = r.Updated
		}
		j.cur = store.Attempt{JobID: j.id, Attempt: j.attempt, AgentID: r.AgentID,
			AgentName: r.AgentName, State: j.state, Started: r.Started, Assigned: assigned,
			CPUSeconds: r.CPUSeconds, MaxRSSBytes: r.MaxRSSBytes}
		switch j.state {
		case stateReady:
			b.enqueue(j)
		case stateAssigned, stateRunning:
			a := b.agentFor(r.AgentID, r.AgentName)
			if a.session == nil && a.lostAt.IsZero() {
				a.lostAt = lostBy
			}
			a.jobs[j.id] = j
			j.agent = a
			j.charge = b.shares.Start(ts.share, ts.res.Cores, j.cur.Assigned)
			ts.nrunning++
		}
	}
}

// enqueue puts a ready job in the index.
func (b *Broker) enqueue(j *jobState) {
	j.queued = true
	j.readySince = b.cfg.Now()
	j.task.nready++
	b.index.push(j)
}

// assign gives j's next attempt to agent a (under lock). The Assign is sent
// once the assignment is durable.
func (b *Broker) assign(j *jobState, a *agentState) *wire.Assign {
	now := b.cfg.Now()
	j.attempt++
	j.state = stateAssigned
	j.agent = a
	j.started, j.ended, j.exitCode, j.errCode, j.errText = time.Time{}, time.Time{}, nil, 0, ""
	b.newAttempt(j, now)
	a.jobs[j.id] = j
	b.touch(j)
	t := j.task
	j.charge = b.shares.Start(t.share, t.res.Cores, now)
	j.runQ = a.q
	a.q.count(&t.res, 1)
	t.nrunning++
	return &wire.Assign{
		JobID: j.id, TaskID: t.id, Index: j.index, Attempt: j.attempt,
		Command: t.command, Env: t.env, Image: t.image, Network: t.network, Resources: t.res,
		SubmitUnixNano: t.created.UnixNano(),
		// A copy: the URLs are filled in per attempt.
		Inputs: slices.Clone(t.inputs[j.id]), Outputs: t.patterns, Stream: t.stream,
	}
}

func (b *Broker) newAttempt(j *jobState, now time.Time) {
	if j.attemptDirty {
		b.attempts = append(b.attempts, j.cur)
		j.attemptDirty = false
	}
	// The attempt's record is written when it ends, and only if the job
	// goes on: until then, and for good if it ends the job, the job's own
	// row holds the attempt, so a restart loses nothing and most jobs cost
	// no attempt row at all.
	j.cur = store.Attempt{JobID: j.id, Attempt: j.attempt, AgentID: j.agent.id,
		AgentName: j.agent.name, State: stateAssigned, Assigned: now}
}

// check finds the live job an agent reports on, fencing stale attempts.
func (b *Broker) check(agentID string, jobID int64, attempt int) (*jobState, error) {
	j, ok := b.jobs[jobID]
	if !ok {
		return nil, fmt.Errorf("job %d: %w", jobID, ErrUnknownJob)
	}
	if j.attempt != attempt || j.agent == nil || j.agent.id != agentID ||
		(j.state != stateAssigned && j.state != stateRunning) {
		return nil, fmt.Errorf("job %d attempt %d (current %d, %s): %w", jobID, attempt, j.attempt, j.state, ErrStale)
	}
	return j, nil
}

// Phase records a phase change reported by the agent running the attempt.
func (b *Broker) Phase(agentID string, jobID int64, attempt int, phase string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, err := b.check(agentID, jobID, attempt)
	if err != nil {
		return err
	}
	if j.state == stateAssigned {
		now := b.cfg.Now()
		j.state, j.started = stateRunning, now
		j.cur.State, j.cur.Started = stateRunning, now
		b.touch(j)
	}
	return nil
}

// Check validates that agentID may open a stream for this attempt: it runs
// the current attempt, or resends a final report whose first copy awaits its
// commit (Report acknowledges that one once durable).
func (b *Broker) Check(agentID string, jobID int64, attempt int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reported[wire.RunningJob{JobID: jobID, Attempt: attempt}] == agentID {
		return nil
	}
	_, err := b.check(agentID, jobID, attempt)
	return err
}

// Report applies an attempt's final report. done is called once the
// outcome is durable (or with the commit's error). A refused report (stale
// attempt, unknown job) returns an error and done is not called.
func (b *Broker) Report(agentID string, jobID int64, attempt int, r *wire.Report, done func(error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	key := wire.RunningJob{JobID: jobID, Attempt: attempt}
	if b.reported[key] == agentID {
		b.afterCommit(done) // a resend: answer when the first is durable
		return nil
	}
	j, err := b.check(agentID, jobID, attempt)
	if err != nil {
		return err
	}
	b.reported[key] = agentID
	b.afterCommit(func(error) {
		b.mu.Lock()
		delete(b.reported, key)
		b.mu.Unlock()
	})
	now := b.cfg.Now()
	exit := r.ExitCode
	j.exitCode = &exit
	j.cur.ExitCode = &exit
	j.cur.CPUSeconds, j.cur.MaxRSSBytes = r.CPUSeconds, r.MaxRSSBytes
	if j.cur.Started.IsZero() && r.StartUnixNano != 0 {
		j.cur.Started = time.Unix(0, r.StartUnixNano)
		j.started = j.cur.Started
	}
	code := errcode.Code(r.ErrorCode)
	if code == errcode.OK && exit != 0 {
		code = errcode.PayloadExit
	}
	if q := j.runQ; q != nil {
		if code == errcode.OK {
			q.done++
		} else {
			q.failed++
		}
		b.ended.add(q.def.Name, j.task.share.Path, code == errcode.OK)
	}
	b.detach(j)
	if code == errcode.OK {
		b.keepOutputs(j, r.Outputs)
		b.finish(j, stateFinished, code, "", now)
	} else {
		text := r.Error
		if text == "" {
			text = code.Text()
		}
		b.fail(j, code, text, now)
	}
	b.afterCommit(done)
	return nil
}

// keepOutputs records the outputs a successful attempt uploaded.
func (b *Broker) keepOutputs(j *jobState, outs []wire.OutputFile) {
	o := j.task.outputs
	if o == nil {
		return
	}
	for i, f := range outs {
		b.files = append(b.files, store.File{JobID: j.id, TaskID: j.task.id, Dir: store.Output, Index: i,
			Name: f.Name, Endpoint: o.Endpoint, Bucket: o.Bucket, Size: f.Size, Adler32: f.Adler32,
			Path: o.OutputKey(j.task.id, j.id, j.index, j.attempt, f.Name), Attempt: j.attempt})
	}
}

// DataInfo is what the dispatcher needs to presign URLs for an attempt.
type DataInfo struct {
	TaskID   int64
	Index    int
	Walltime time.Duration
	Inputs   []wire.InputFile // without URLs
	Outputs  *task.Outputs
}

// Data returns the data of the attempt an agent runs, fencing stale attempts.
func (b *Broker) Data(agentID string, jobID int64, attempt int) (*DataInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, err := b.check(agentID, jobID, attempt)
	if err != nil {
		return nil, err
	}
	t := j.task
	return &DataInfo{TaskID: t.id, Index: j.index, Walltime: time.Duration(t.res.WalltimeSecs) * time.Second,
		Inputs: t.inputs[j.id], Outputs: t.outputs}, nil
}

// detach removes j from its agent's running set, and its attempt from
// its share's and queue's running counts.
func (b *Broker) detach(j *jobState) {
	if j.agent == nil {
		return
	}
	delete(j.agent.jobs, j.id)
	j.agent = nil
	t := j.task
	b.shares.End(t.share, j.charge, b.cfg.Now())
	t.nrunning--
	if q := j.runQ; q != nil {
		q.count(&t.res, -1)
		if q.blocked { // another of its agents may take work now
			q.blocked = false
			b.refeed[q] = struct{}{}
		}
		j.runQ = nil
	}
}

// fail ends j's current attempt with code; the job is retried when the code
// is retryable and attempts remain, else it fails for good.
func (b *Broker) fail(j *jobState, code errcode.Code, text string, now time.Time) {
	j.errCode, j.errText = int(code), text
	j.cur.State, j.cur.ErrorCode, j.cur.Error, j.cur.Ended = stateFailed, int(code), text, now
	if !code.Retryable() || j.attempt >= j.maxAttempts {
		b.finish(j, stateFailed, code, text, now)
		return
	}
	j.attemptDirty = true // the next attempt takes over the job's row
	j.state = stateReady
	b.touch(j)
	delay := b.backoff(j.attempt)
	if delay <= 0 {
		b.enqueue(j)
		b.feedHungry(j.task.queue)
		return
	}
	j.readyAt = now.Add(delay)
	heap.Push(&b.delayed, j)
}

func (b *Broker) backoff(attempt int) time.Duration {
	d := b.cfg.RetryBackoff
	for i := 1; i < attempt && d < b.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, b.cfg.MaxBackoff)
}

// finish puts j in a final state and drops it from memory.
func (b *Broker) finish(j *jobState, s store.State, code errcode.Code, text string, now time.Time) {
	// Only an assigned or running job has an open attempt to close; a ready
	// job's j.cur is its previous, ended attempt (or zero after Revive).
	open := j.state == stateAssigned || j.state == stateRunning
	j.state, j.ended, j.errCode, j.errText = s, now, int(code), text
	// An attempt that ends the job is recorded by the job's row (record).
	if open && j.attempt > 0 && j.cur.Ended.IsZero() {
		j.cur.State, j.cur.Ended, j.cur.ErrorCode, j.cur.Error = s, now, int(code), text
	}
	if j.queued {
		j.queued = false
		j.task.nready--
	}
	b.touch(j)
	delete(b.jobs, j.id)
	t := j.task
	delete(t.inputs, j.id)
	delete(t.cacheIDs, j.id)
	if t.inputs != nil && b.cfg.JobEnded != nil {
		id := j.id
		b.afterCommit(func(err error) {
			if err == nil {
				b.cfg.JobEnded(id)
			}
		})
	}
	if t.live--; t.live == 0 {
		b.index.unindex(t)
		delete(b.tasks, t.id)
	}
}

// KillTask cancels every live job of a task; it returns how many.
func (b *Broker) KillTask(taskID int64, reason string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	n := 0
	for _, j := range b.jobs {
		if j.task.id == taskID {
			b.kill(j, reason)
			n++
		}
	}
	return n
}

// KillJob cancels a live job; false if it is not live.
func (b *Broker) KillJob(jobID int64, reason string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	j, ok := b.jobs[jobID]
	if ok {
		b.kill(j, reason)
	}
	return ok
}

func (b *Broker) kill(j *jobState, reason string) {
	if a := j.agent; a != nil {
		msg := []wire.Message{&wire.Kill{JobID: j.id, Attempt: j.attempt, Reason: reason}}
		if s := a.session; s != nil {
			b.afterCommit(func(err error) {
				if err == nil {
					_ = s.Send(msg)
				}
			})
		}
		b.detach(j)
	}
	b.finish(j, stateCancelled, errcode.DispatcherKilled, reason, b.cfg.Now())
}

// Revive makes failed or cancelled jobs of a task ready again for a user
// retry, each allowed the task's max_attempts more attempts. The jobs come
// from the store; those already live are skipped. It returns how many.
// With pending, the jobs wait in pending for their inputs (MakeReady).
func (b *Broker) Revive(t store.Task, spec *task.Spec, jobs []store.Job, files []store.File, pending bool) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	ts := b.taskFor(t, spec)
	ts.addFiles(files)
	n := 0
	for _, r := range jobs {
		if _, live := b.jobs[r.ID]; live || (r.State != stateFailed && r.State != stateCancelled) {
			continue
		}
		r.State = stateReady
		if pending {
			r.State = statePending
		}
		if r.Attempt > 0 { // its row holds the attempt that ended it
			b.archive = append(b.archive, r.ID)
		}
		r.MaxAttempts = r.Attempt + t.MaxAttempts
		r.Ended = time.Time{}
		j := b.adopt(ts, r)
		b.touch(j)
		if !pending {
			b.enqueue(j)
		}
		n++
	}
	if ts.live == 0 {
		delete(b.tasks, ts.id)
	}
	b.feedHungry(ts.queue)
	return n
}

// MakeReady makes pending jobs ready (their inputs reached disk) and
// offers them to agents. Jobs that are not pending are left alone.
func (b *Broker) MakeReady(ids []int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	queues := map[string]bool{}
	for _, id := range ids {
		j, ok := b.jobs[id]
		if !ok || j.state != statePending {
			continue
		}
		j.state = stateReady
		b.touch(j)
		b.enqueue(j)
		queues[j.task.queue] = true
	}
	for q := range queues {
		b.feedHungry(q)
	}
}

// FailPending fails a pending job for good (its inputs could not be staged).
func (b *Broker) FailPending(id int64, code errcode.Code, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	defer b.settle()
	if j, ok := b.jobs[id]; ok && j.state == statePending {
		b.finish(j, stateFailed, code, text, b.cfg.Now())
	}
}

// Live returns the in-memory view of a live job, fresher than the store.
func (b *Broker) Live(jobID int64) (store.Job, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[jobID]
	if !ok {
		return store.Job{}, false
	}
	return j.record(), true
}

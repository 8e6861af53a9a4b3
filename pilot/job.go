package pilot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pando-wms/pando/containers"
	"github.com/pando-wms/pando/dispatcher/errcode"
	"github.com/pando-wms/pando/dispatcher/task"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// killGrace is how long a payload has between SIGTERM and SIGKILL.
const killGrace = 10 * time.Second

// sysRoot is where NameGPUs finds the node's sysfs and dev trees.
const sysRoot = "/"

// job is one attempt the pilot runs or still has to report.
type job struct {
	a    *wire.Assign
	dir  string
	gpus []int // indexes into the pilot's GPUs given to this job

	mu       sync.Mutex
	ctr      containers.Container
	killCode errcode.Code
	killText string
	dropped  bool
	out      *stream // current job stream, if any
}

// kill stops the payload and records why (the first reason wins).
func (j *job) kill(code errcode.Code, text string) {
	j.mu.Lock()
	if j.killCode == 0 {
		j.killCode, j.killText = code, text
	}
	c := j.ctr
	j.mu.Unlock()
	if c == nil {
		return // not started yet: start checks killCode
	}
	ctx := context.Background()
	_ = c.Kill(ctx, syscall.SIGTERM)
	time.AfterFunc(killGrace, func() { _ = c.Kill(ctx, syscall.SIGKILL) })
}

// killed returns why the job was killed, if it was.
func (j *job) killed() (errcode.Code, string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.killCode, j.killText
}

// running lists the attempts to announce in Hello after a reconnect.
func (p *Pilot) running() []wire.RunningJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wire.RunningJob, 0, len(p.jobs))
	for _, j := range p.jobs {
		out = append(out, wire.RunningJob{JobID: j.a.JobID, Attempt: j.a.Attempt})
	}
	return out
}

// start takes an assignment and runs it in its own goroutine.
func (p *Pilot) start(ctx context.Context, a *wire.Assign) {
	p.mu.Lock()
	key := wire.RunningJob{JobID: a.JobID, Attempt: a.Attempt}
	if _, ok := p.jobs[key]; ok {
		p.mu.Unlock()
		p.log.Warn("duplicate assignment ignored", "job", a.JobID, "attempt", a.Attempt)
		return
	}
	j := &job{a: a, dir: filepath.Join(p.cfg.WorkDir, fmt.Sprintf("job-%d.%d", a.JobID, a.Attempt))}
	p.jobs[key] = j
	p.usedCPU += a.Resources.Cores
	p.usedMem += a.Resources.MemoryBytes
	j.gpus = p.takeGPUs(a.Resources)
	p.jobsWG.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.jobsWG.Done()
		p.runJob(ctx, j)
	}()
}

func (p *Pilot) runJob(ctx context.Context, j *job) {
	log := p.log.With("job", j.a.JobID, "attempt", j.a.Attempt)
	log.Debug("job starting", "command", j.a.Command)
	rep := p.execute(ctx, j)
	p.release(j.a.Resources.Cores, j.a.Resources.MemoryBytes, j.gpus)
	log.Info("job ended", "exit", rep.ExitCode, "error_code", rep.ErrorCode, "error", rep.Error)
	p.deliver(ctx, j, rep)
	p.mu.Lock()
	delete(p.jobs, wire.RunningJob{JobID: j.a.JobID, Attempt: j.a.Attempt})
	p.lastBusy = time.Now()
	p.mu.Unlock()
	if !p.cfg.KeepWorkDirs {
		if err := os.RemoveAll(j.dir); err != nil {
			log.Warn("remove work directory", "err", err)
		}
	}
	p.wake()
}

// takeGPUs marks the GPUs r asks for as held and returns their indexes:
// free ones of one vendor that fit r (see PickGPUs), or none. Credit keeps
// the dispatcher from assigning more GPUs than are free, but it counts GPUs
// of every vendor and model together, so a shortfall can happen; execute
// refuses to start the job then.
func (p *Pilot) takeGPUs(r wire.JobResources) []int {
	got := PickGPUs(p.cfg.Resources.GPUs, p.gpuHeld, r)
	for _, i := range got {
		p.gpuHeld[i] = true
	}
	return got
}

func (p *Pilot) freeGPUs() int {
	n := 0
	for _, held := range p.gpuHeld {
		if !held {
			n++
		}
	}
	return n
}

// execute runs the payload to its end and returns the report to deliver.
func (p *Pilot) execute(ctx context.Context, j *job) *wire.Report {
	rep := &wire.Report{StartUnixNano: time.Now().UnixNano()}
	defer func() { rep.EndUnixNano = time.Now().UnixNano() }()
	failWith := func(code errcode.Code, err error) *wire.Report {
		rep.ExitCode, rep.ErrorCode, rep.Error = -1, int(code), err.Error()
		return rep
	}
	if err := os.MkdirAll(j.dir, 0o700); err != nil {
		return failWith(errcode.PilotWorkdir, err)
	}
	if len(j.gpus) != j.a.Resources.GPUs {
		return failWith(errcode.PilotStartFailed, fmt.Errorf("job needs %d GPUs of one vendor that fit it, and not that many are free", j.a.Resources.GPUs))
	}
	gpus, err := NameGPUs(sysRoot, p.cfg.Resources.GPUs, j.gpus)
	if err != nil {
		// The process runtime can still name them; a container runtime refuses a GPU without device nodes.
		p.log.Warn("GPU device nodes not found", "job", j.a.JobID, "err", err)
	}
	var staged *stagedInputs
	if len(j.a.Inputs) > 0 {
		p.emit(ctx, j, &wire.JobState{Phase: wire.PhaseStageIn, UnixNano: time.Now().UnixNano()})
		var err error
		staged, err = p.stageIn(ctx, j)
		defer staged.release()
		if err != nil {
			if code, text := j.killed(); code != 0 {
				return failWith(code, errors.New(text))
			}
			return failWith(stageFailure(err).code, err)
		}
	}
	p.emit(ctx, j, &wire.JobState{Phase: wire.PhaseRunning, UnixNano: time.Now().UnixNano()})
	spec := PayloadSpec(fmt.Sprintf("pando-%d-%d-%s", j.a.JobID, j.a.Attempt, p.id[:8]), j.a, j.dir, gpus)
	if staged != nil {
		spec.Env["PANDO_INPUT_DIR"] = staged.dir
		spec.Env["PANDO_INPUTS"] = strings.Join(staged.names, ",")
		if j.a.Stream {
			spec.Env["PANDO_INPUT_URLS"] = strings.Join(staged.urls, ",")
		}
		spec.Mounts = append(spec.Mounts, containers.Mount{Source: staged.dir, Target: staged.dir, ReadOnly: true})
	}
	spec.Stdout = &logWriter{p: p, ctx: ctx, j: j, stream: wire.Stdout}
	spec.Stderr = &logWriter{p: p, ctx: ctx, j: j, stream: wire.Stderr}
	rt := p.cfg.Runtime
	if j.a.Image != "" {
		if rt = p.cfg.Containers; rt == nil {
			return failWith(errcode.PilotNoRuntime, errors.New("the job names an image and this pilot has no container runtime"))
		}
	}
	c, err := rt.Create(ctx, spec)
	if code, text := j.killed(); code != 0 && err != nil {
		return failWith(code, errors.New(text)) // the kill explains the failure
	}
	if err != nil {
		switch {
		case errors.Is(err, containers.ErrImageNotFound):
			return failWith(errcode.PayloadImage, err)
		case errors.Is(err, containers.ErrUnsupported), errors.Is(err, containers.ErrUnavailable):
			return failWith(errcode.PilotNoRuntime, err)
		}
		return failWith(errcode.PilotStartFailed, err)
	}
	defer c.Remove(context.Background())
	j.mu.Lock()
	if j.killCode != 0 {
		j.mu.Unlock()
		return failWith(j.killCode, errors.New(j.killText))
	}
	err = c.Start(ctx)
	if err == nil {
		j.ctr = c
	}
	j.mu.Unlock()
	if code, text := j.killed(); code != 0 && err != nil {
		return failWith(code, errors.New(text))
	}
	if err != nil {
		if errors.Is(err, containers.ErrNotFound) {
			return failWith(errcode.PayloadNotFound, err)
		}
		return failWith(errcode.PilotStartFailed, err)
	}
	rep = p.supervise(ctx, j, c, rep)
	if rep.ErrorCode == 0 && rep.ExitCode == 0 && len(j.a.Outputs) > 0 {
		p.emit(ctx, j, &wire.JobState{Phase: wire.PhaseStageOut, UnixNano: time.Now().UnixNano()})
		outs, err := p.stageOut(ctx, j)
		if err != nil {
			return failWith(errcode.StageOutFailed, err)
		}
		rep.Outputs = outs
	}
	return rep
}

// supervise waits for the payload, sampling it and enforcing its walltime.
func (p *Pilot) supervise(ctx context.Context, j *job, c containers.Container, rep *wire.Report) *wire.Report {
	wall := time.Duration(j.a.Resources.WalltimeSecs) * time.Second
	if wall > 0 {
		t := time.AfterFunc(wall, func() {
			j.kill(errcode.PayloadWalltime, fmt.Sprintf("walltime of %s exceeded", wall))
		})
		defer t.Stop()
	}
	sctx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	var last containers.Stats
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		last = p.sample(sctx, j, c)
	}()
	exit, err := c.Wait(context.Background())
	stats, _ := c.Stats(context.Background()) // a container runtime may know nothing once it ended
	stopSampling()
	sampled.Wait()
	rep.ExitCode = exit.Code
	rep.CPUSeconds = max(last.CPUSeconds, stats.CPUSeconds)
	rep.MaxRSSBytes = max(last.RSSBytes, stats.RSSBytes)
	j.mu.Lock()
	code, text := j.killCode, j.killText
	j.mu.Unlock()
	switch {
	case err != nil:
		rep.ErrorCode, rep.Error = int(errcode.PilotLostReport), err.Error()
	case code != 0:
		rep.ErrorCode, rep.Error = int(code), text
	case exit.OOM:
		rep.ErrorCode, rep.Error = int(errcode.PayloadOOM), fmt.Sprintf("out of memory: killed at its limit of %s", task.FormatSize(j.a.Resources.MemoryBytes))
	case exit.Signal != "":
		rep.ErrorCode, rep.Error = int(errcode.PayloadSignal), "killed by "+exit.Signal
	case exit.Code != 0:
		rep.ErrorCode, rep.Error = int(errcode.PayloadExit), fmt.Sprintf("exit status %d", exit.Code)
	}
	return rep
}

// sample reports the payload's usage periodically; it returns the peak RSS
// and the last CPU time seen.
func (p *Pilot) sample(ctx context.Context, j *job, c containers.Container) containers.Stats {
	t := time.NewTicker(p.cfg.SampleEvery)
	defer t.Stop()
	var peak containers.Stats
	for {
		select {
		case <-ctx.Done():
			return peak
		case <-t.C:
			st, err := c.Stats(ctx)
			if err != nil {
				continue
			}
			peak.RSSBytes = max(peak.RSSBytes, st.RSSBytes)
			peak.CPUSeconds = max(peak.CPUSeconds, st.CPUSeconds)
			p.emit(ctx, j, &wire.Sample{UnixNano: time.Now().UnixNano(), CPUPercent: st.CPUPercent, RSSBytes: st.RSSBytes})
		}
	}
}

// kill stops a job the dispatcher cancelled.
func (p *Pilot) kill(jobID int64, attempt int, reason string) {
	p.mu.Lock()
	j, ok := p.jobs[wire.RunningJob{JobID: jobID, Attempt: attempt}]
	p.mu.Unlock()
	if !ok {
		return
	}
	p.log.Info("killing job on request", "job", jobID, "reason", reason)
	j.kill(errcode.DispatcherKilled, reason)
}

// drop stops a job the dispatcher no longer wants and discards its report.
func (p *Pilot) drop(jobID int64, attempt int) {
	p.mu.Lock()
	j, ok := p.jobs[wire.RunningJob{JobID: jobID, Attempt: attempt}]
	p.mu.Unlock()
	if !ok {
		return
	}
	j.mu.Lock()
	j.dropped = true
	j.mu.Unlock()
	j.kill(errcode.DispatcherStale, "dropped by the dispatcher")
}

// stopJobs kills every job, e.g. when the pilot is stopped.
func (p *Pilot) stopJobs(reason string) {
	p.setDraining(reason)
	p.mu.Lock()
	jobs := make([]*job, 0, len(p.jobs))
	for _, j := range p.jobs {
		jobs = append(jobs, j)
	}
	p.mu.Unlock()
	for _, j := range jobs {
		j.kill(errcode.PilotShutdown, reason)
	}
}

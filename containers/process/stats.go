package process

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/process"

	"github.com/pando-wms/pando/containers"
)

// userHZ is the unit of the times in /proc/PID/stat: fixed at 100 by the kernel's ABI on every
// architecture Linux reports them for, whatever the kernel's internal HZ.
const userHZ = 100

// sampler turns cumulative CPU time into a percentage between two Stats calls.
type sampler struct {
	cpu float64
	at  time.Time
}

// Stats samples the payload's process tree: the leader and its descendants by parent pid.
// Processes that left the tree (reparented to init after their parent died) are not counted.
func (c *container) Stats(ctx context.Context) (containers.Stats, error) {
	c.mu.Lock()
	started, reaped, pid, state := c.started, c.reaped, c.pid, c.state
	c.mu.Unlock()
	if !started {
		return containers.Stats{}, fmt.Errorf("process: stats %q: %w", c.spec.Name, containers.ErrNotStarted)
	}
	var st containers.Stats
	switch {
	case state != nil:
		// Ended: the rusage of the reaped leader includes every descendant it waited for.
		st.CPUSeconds = (state.UserTime() + state.SystemTime()).Seconds()
	case !reaped: // while reaped, the pid may already belong to someone else
		var err error
		if st, err = sampleTree(ctx, int32(pid)); err != nil {
			return containers.Stats{}, fmt.Errorf("process: stats %q: %w", c.spec.Name, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sampler.update(&st, c.startAt, time.Now())
	return st, nil
}

// update fills in CPUPercent and keeps CPUSeconds from going backwards, which it would when a
// descendant leaves the tree.
func (s *sampler) update(st *containers.Stats, start, now time.Time) {
	st.CPUSeconds = max(st.CPUSeconds, s.cpu)
	since := s.at
	if since.IsZero() {
		since = start
	}
	if dt := now.Sub(since).Seconds(); dt > 0 {
		st.CPUPercent = 100 * (st.CPUSeconds - s.cpu) / dt
	}
	s.cpu, s.at = st.CPUSeconds, now
}

func sampleTree(ctx context.Context, root int32) (containers.Stats, error) {
	procs, err := process.ProcessesWithContext(ctx)
	if err != nil {
		return containers.Stats{}, err
	}
	// One pass over /proc: gopsutil's Children reads all of /proc on every call.
	children := map[int32][]*process.Process{}
	var tree []*process.Process
	for _, p := range procs {
		if p.Pid == root {
			tree = append(tree, p)
			continue
		}
		if ppid, err := p.PpidWithContext(ctx); err == nil {
			children[ppid] = append(children[ppid], p)
		}
	}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i].Pid]...)
	}
	var st containers.Stats
	for _, p := range tree {
		add(ctx, &st, p)
	}
	return st, nil
}

// add counts one process; one that exited meanwhile is skipped.
func add(ctx context.Context, st *containers.Stats, p *process.Process) {
	t, err := p.TimesWithContext(ctx)
	if err != nil {
		return
	}
	m, err := p.MemoryInfoWithContext(ctx)
	if err != nil {
		return
	}
	st.CPUSeconds += t.User + t.System + reapedChildrenCPU(p.Pid)
	st.RSSBytes += int64(m.RSS)
	st.PIDs++
}

// reapedChildrenCPU is the CPU time of children that p already waited for (cutime+cstime),
// which gopsutil does not report: without it a shell script running one short command after
// another would seem to use almost no CPU.
func reapedChildrenCPU(pid int32) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state), so field n is f[n-3]
	if len(f) < 15 {
		return 0
	}
	cutime, err1 := strconv.ParseFloat(f[13], 64)
	cstime, err2 := strconv.ParseFloat(f[14], 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return (cutime + cstime) / userHZ
}

package podman

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings/containers"
)

// OwnerLabel names the pilot process that created a container, as
// "PID:STARTTIME" (its start time in clock ticks since boot, from
// /proc/PID/stat), so that a reused PID is not mistaken for its owner.
const OwnerLabel = "io.pando.pilot"

// processID is this process's owner value.
func processID(pid int) (string, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", false
	}
	return strconv.Itoa(pid) + ":" + f[19], true // field 22: starttime
}

// ownerAlive says whether the process an owner label names still runs.
func ownerAlive(owner string) bool {
	pid, _, ok := strings.Cut(owner, ":")
	n, err := strconv.Atoi(pid)
	if !ok || err != nil {
		return false
	}
	now, ok := processID(n)
	return ok && now == owner
}

// SweepOrphans removes containers that a pilot on this node created and
// left behind when it died: their payloads would otherwise run on while
// the dispatcher retries their jobs elsewhere. It returns how many it removed.
func (r *Runtime) SweepOrphans(ctx context.Context) (int, error) {
	all := true
	list, err := containers.List(r.call(ctx), &containers.ListOptions{All: &all,
		Filters: map[string][]string{"label": {OwnerLabel}}})
	if err != nil {
		return 0, classify(err, "list containers")
	}
	n := 0
	for _, c := range list {
		owner := c.Labels[OwnerLabel]
		if owner == r.owner || ownerAlive(owner) {
			continue
		}
		force, ignore, timeout := true, true, uint(0)
		if _, err := containers.Remove(r.call(ctx), c.ID, &containers.RemoveOptions{Force: &force, Ignore: &ignore, Timeout: &timeout}); err != nil {
			r.log.Warn("remove an orphaned payload container", "id", c.ID, "names", c.Names, "err", err)
			continue
		}
		r.log.Warn("removed a payload container whose pilot is gone", "id", c.ID, "names", c.Names, "pilot", owner)
		n++
	}
	return n, nil
}

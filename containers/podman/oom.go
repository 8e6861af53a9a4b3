package podman

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// oomWatch learns whether the kernel's OOM killer struck inside a
// container's memory cgroup. Podman's OOMKilled flag stays false on these
// hosts (cgroups v1), and the cgroup is gone by the time the exit is known,
// so the watch reads the counters while the payload runs: on cgroups v1 it
// registers for the cgroup's OOM notification (an eventfd), which fires at
// the kill, before the cgroup is removed.
type oomWatch struct {
	seen atomic.Bool
	efd  *os.File
	done chan struct{}
	v2   string // cgroups v2: memory.events, read at the end
}

func watchOOM(cgroup string) *oomWatch {
	w := &oomWatch{done: make(chan struct{})}
	if cgroup == "" {
		close(w.done)
		return w
	}
	if p := filepath.Join("/sys/fs/cgroup", cgroup, "memory.events"); exists(p) {
		w.v2 = p
		close(w.done)
		return w
	}
	dir := filepath.Join("/sys/fs/cgroup/memory", cgroup)
	if err := w.register(dir); err != nil {
		close(w.done)
		return w
	}
	if oomKills(filepath.Join(dir, "memory.oom_control")) > 0 {
		w.seen.Store(true) // before the registration took
	}
	go w.listen(dir)
	return w
}

func (w *oomWatch) register(dir string) error {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return err
	}
	defer ctl.Close() // the registration holds its own reference
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return err
	}
	w.efd = os.NewFile(uintptr(fd), "oom-eventfd")
	reg := fmt.Sprintf("%d %d", fd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		w.efd.Close()
		return err
	}
	return nil
}

// listen wakes on each notification; the cgroup's removal also notifies,
// and ends the watch.
func (w *oomWatch) listen(dir string) {
	defer close(w.done)
	defer w.efd.Close()
	buf := make([]byte, 8)
	for {
		if _, err := w.efd.Read(buf); err != nil {
			return
		}
		// The notification comes as the cgroup hits its limit, a moment
		// before the killer counts its kill; the count comes before the
		// victim dies, so before the cgroup can be removed. Watch it briefly.
		for i := 0; i < 100 && exists(dir); i++ {
			if oomKills(filepath.Join(dir, "memory.oom_control")) > 0 {
				w.seen.Store(true)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if !exists(dir) {
			return
		}
	}
}

// oom reports whether an OOM kill was seen. Call it once the payload ended.
func (w *oomWatch) oom() bool {
	if w.v2 != "" {
		return oomKills(w.v2) > 0
	}
	return w.seen.Load()
}

// stop ends the watch if the cgroup's removal did not.
func (w *oomWatch) stop() {
	if w.efd != nil {
		w.efd.Close()
	}
	<-w.done
}

// memoryCgroup is the memory cgroup of process pid, from /proc/PID/cgroup:
// the memory controller's line on cgroups v1, the unified one on v2.
func memoryCgroup(pid int) string {
	if pid <= 0 {
		return ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	unified := ""
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl == "memory" {
				return parts[2]
			}
		}
		if parts[0] == "0" && parts[1] == "" {
			unified = parts[2]
		}
	}
	return unified
}

// oomKills reads the oom_kill counter of memory.oom_control or memory.events.
func oomKills(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

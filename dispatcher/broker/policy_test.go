package broker_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pando-wms/pando/dispatcher/broker"
	"github.com/pando-wms/pando/dispatcher/queue"
	"github.com/pando-wms/pando/dispatcher/wire"
)

// taskOf maps assigned job IDs to the task each belongs to, in order.
func tasksOf(as []*wire.Assign) []int64 {
	out := make([]int64, len(as))
	for i, a := range as {
		out[i] = a.TaskID
	}
	return out
}

// ok reports a job finished and gives its one core (and GPUs) back.
func (a *agent) done(as *wire.Assign) {
	a.mustReport(as, &wire.Report{})
	a.wantW(&wire.Want{Slots: 1, Cores: as.Resources.Cores, MemoryBytes: as.Resources.MemoryBytes, GPUs: as.Resources.GPUs})
	a.h.commit()
}

// GPU slots go to GPU work: CPU-only work fills a GPU node only while no
// GPU work it could run waits, and a freed slot goes to waiting GPU work
// before older, higher-priority CPU work.
func TestGPUWorkNotStarvedByCPUWork(t *testing.T) {
	h := newHarness(t, defaultConfig())
	cpu, _ := h.addTask(taskOpts{jobs: 100, priority: 100})
	a := h.connect("gpu-node", "")
	a.wantW(&wire.Want{Slots: 8, Cores: 8, MemoryBytes: 8 * gib, GPUs: 4})
	h.commit()
	first := a.assigns()
	if len(first) != 8 {
		t.Fatalf("with no GPU work the GPU node got %d CPU jobs, want 8 (backfill)", len(first))
	}
	gpu, gpuIDs := h.addTask(taskOpts{jobs: 6, gpus: 1})
	h.addTask(taskOpts{jobs: 3, gpus: 1, gpuModel: "H100"}) // fits no GPU here: must not block CPU work
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("assigned %v with no free slot", jobIDs(got))
	}
	var gotGPU []int64
	for _, as := range first {
		a.done(as)
		for _, n := range a.assigns() {
			if n.TaskID == cpu.ID {
				if len(gotGPU) < 4 {
					t.Fatalf("a freed slot went to CPU work while GPU work waited (GPU jobs so far %v)", gotGPU)
				}
			} else {
				gotGPU = append(gotGPU, n.JobID)
			}
		}
	}
	if len(gotGPU) != 4 || gotGPU[0] != gpuIDs[0] {
		t.Fatalf("GPU jobs assigned %v, want the first 4 of %v (task %d) as slots freed", gotGPU, gpuIDs, gpu.ID)
	}
	// Every GPU is busy: the remaining slots may run CPU work meanwhile.
	plain := h.hello("cpu-node", "")
	plain.Resources.GPUs = nil
	b := h.connectHello(plain)
	b.want(4)
	h.commit()
	if got := b.assigns(); len(got) != 4 || got[0].TaskID != cpu.ID {
		t.Fatalf("a node without GPUs got %v, want 4 CPU jobs", tasksOf(got))
	}
}

// Inside a share: priority first, then age; with aging, old low-priority
// work eventually passes newer high-priority work.
func TestPriorityAndAgingInsideShare(t *testing.T) {
	cfg := defaultConfig()
	cfg.Aging = time.Minute
	h := newHarness(t, cfg)
	low, _ := h.addTask(taskOpts{priority: 1})
	h.clk.Advance(time.Second)
	high, _ := h.addTask(taskOpts{priority: 9})
	mid, _ := h.addTask(taskOpts{priority: 5})
	a := h.connect("a", "")
	a.want(3)
	h.commit()
	if got, want := tasksOf(a.assigns()), []int64{high.ID, mid.ID, low.ID}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want priority order %v", got, want)
	}
	old, _ := h.addTask(taskOpts{priority: 0})
	h.clk.Advance(30 * time.Minute) // old has gained 30 points
	fresh, _ := h.addTask(taskOpts{priority: 20})
	a.want(2)
	h.commit()
	if got, want := tasksOf(a.assigns()), []int64{old.ID, fresh.ID}; !slices.Equal(got, want) {
		t.Fatalf("order %v, want the aged task first %v", got, want)
	}
}

// Between shares, the one furthest below its target goes first, whatever
// the priorities inside them.
func TestSharesBeforePriority(t *testing.T) {
	h := newHarness(t, defaultConfig())
	if err := h.b.SetShare("a", 75); err != nil {
		t.Fatal(err)
	}
	if err := h.b.SetShare("b", 25); err != nil {
		t.Fatal(err)
	}
	ta, _ := h.addTask(taskOpts{jobs: 100, share: "a"})
	tb, _ := h.addTask(taskOpts{jobs: 100, share: "b", priority: 1000})
	a := h.connect("a", "")
	a.want(8)
	h.commit()
	n := map[int64]int{}
	for _, as := range a.assigns() {
		n[as.TaskID]++
	}
	if n[ta.ID] != 6 || n[tb.ID] != 2 {
		t.Fatalf("8 slots went %d to a (75%%) and %d to b (25%%), want 6 and 2", n[ta.ID], n[tb.ID])
	}
}

// Queue limits, statuses and served shares apply to the next assignment.
func TestQueuePolicy(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.b.PutQueue(queue.Queue{Name: "grid", Kind: queue.Grid, Status: queue.Online, MaxRunning: 2})
	ids := func(o taskOpts) []int64 { _, x := h.addTask(o); return x }
	anyQ := ids(taskOpts{jobs: 5})
	a := h.connect("a", "grid")
	a.want(8)
	h.commit()
	got := a.assigns()
	if len(got) != 2 {
		t.Fatalf("max_running 2: assigned %d", len(got))
	}
	a.done(got[0])
	if n := len(a.assigns()); n != 1 {
		t.Fatalf("after one ended: assigned %d, want 1", n)
	}
	// test: only work that names the queue.
	h.b.PutQueue(queue.Queue{Name: "grid", Kind: queue.Grid, Status: queue.Test})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("test queue took queueless work %v", jobIDs(got))
	}
	named := ids(taskOpts{queue: "grid"})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, named) {
		t.Fatalf("test queue got %v, want its own %v", got, named)
	}
	// draining: nothing new.
	h.b.PutQueue(queue.Queue{Name: "grid", Kind: queue.Grid, Status: queue.Draining})
	ids(taskOpts{queue: "grid"})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("draining queue got %v", jobIDs(got))
	}
	// online again, serving only share prod: work of the default share
	// (its own waiting job, the queueless ones) stays, prod work goes.
	h.b.PutQueue(queue.Queue{Name: "grid", Kind: queue.Grid, Status: queue.Online, Shares: []string{"prod"}})
	h.commit()
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("queue serving prod got default-share work %v", jobIDs(got))
	}
	_ = h.b.SetShare("prod/mc", 50)
	prod := ids(taskOpts{share: "prod/mc"})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, prod) {
		t.Fatalf("queue serving prod got %v, want %v (and none of %v)", got, prod, anyQ)
	}
	// offline: idle agents are refused, with a reason that says so.
	h.b.PutQueue(queue.Queue{Name: "grid", Kind: queue.Grid, Status: queue.Offline})
	_, err := h.b.Connect(h.hello("b", "grid"), newSession(h.clk.Now()))
	if !errors.Is(err, broker.ErrBadQueue) || !strings.Contains(err.Error(), "offline") {
		t.Fatalf("idle agent of an offline queue: %v", err)
	}
	_, err = h.b.Connect(h.hello("c", "nowhere"), newSession(h.clk.Now()))
	if !errors.Is(err, broker.ErrBadQueue) || !strings.Contains(err.Error(), "pando queue create nowhere") {
		t.Fatalf("agent of an unknown queue: %v", err)
	}
}

// GPU model, memory, compute capability, accelerators and architecture
// must fit what the agent's node reported.
func TestResourceConstraints(t *testing.T) {
	h := newHarness(t, defaultConfig())
	hello := h.hello("h100", "")
	hello.Resources.Arch = "amd64"
	hello.Resources.GPUs = []wire.GPU{{Model: "NVIDIA H100 80GB HBM3", Vendor: "nvidia", MemoryBytes: 80 * gib, ComputeMajor: 9}}
	hello.Resources.Accelerators = []wire.Accelerator{{Kind: "fpga", Model: "Alveo U250", Count: 1}}
	a := h.connectHello(hello)
	for _, c := range []struct {
		name string
		o    taskOpts
		fits bool
	}{
		{"model", taskOpts{gpus: 1, gpuModel: "H100"}, true},
		{"model miss", taskOpts{gpus: 1, gpuModel: "^A100"}, false},
		{"memory", taskOpts{gpus: 1, gpuMemory: 40 * gib}, true},
		{"memory miss", taskOpts{gpus: 1, gpuMemory: 96 * gib}, false},
		{"compute", taskOpts{gpus: 1, gpuCompute: "8.6"}, true},
		{"compute miss", taskOpts{gpus: 1, gpuCompute: "10.0"}, false},
		{"two gpus", taskOpts{gpus: 2}, false},
		{"fpga", taskOpts{accel: "fpga"}, true},
		{"tpu", taskOpts{accel: "tpu"}, false},
		{"arch alias", taskOpts{arch: "x86_64"}, true},
		{"arch miss", taskOpts{arch: "arm64"}, false},
		{"vendor", taskOpts{accel: "nvidia"}, true},
	} {
		_, ids := h.addTask(c.o)
		a.wantW(&wire.Want{Slots: 1, Cores: 1, MemoryBytes: gib, GPUs: 2})
		h.commit()
		got := a.assigns()
		if c.fits != (len(got) == 1) {
			t.Errorf("%s: assigned %v, want fits=%v", c.name, jobIDs(got), c.fits)
		}
		if !c.fits {
			why, _ := h.b.Why(ids[0])
			if len(why.Agents) != 1 || why.Agents[0].Fits || why.Agents[0].Reason == "" {
				t.Errorf("%s: why = %+v", c.name, why)
			}
			h.b.KillJob(ids[0], "test")
		}
		for _, as := range got {
			a.done(as)
			a.assigns()
		}
		a.wantW(&wire.Want{Slots: -1, Cores: -1, MemoryBytes: -gib, GPUs: -2}) // take back the unused credit
	}
}

// A job's GPUs come from one vendor: a node with one NVIDIA and one AMD
// GPU cannot run a two-GPU job.
func TestGPUsOfOneVendor(t *testing.T) {
	h := newHarness(t, defaultConfig())
	hello := h.hello("mixed", "")
	hello.Resources.GPUs = []wire.GPU{{Model: "NVIDIA A100", Vendor: "nvidia", MemoryBytes: 40 * gib},
		{Index: 1, Model: "AMD Instinct MI250X", Vendor: "amd", MemoryBytes: 64 * gib, ComputeMajor: 9, ComputeMinor: 10}} // gfx90a, as the probe reports it
	a := h.connectHello(hello)
	_, two := h.addTask(taskOpts{gpus: 2})
	// Compute capability is CUDA's: the AMD GPU never meets it.
	h.addTask(taskOpts{gpus: 1, gpuModel: "MI250", gpuCompute: "8.0"})
	_, one := h.addTask(taskOpts{gpus: 1, gpuModel: "MI250"})
	a.wantW(&wire.Want{Slots: 2, Cores: 2, MemoryBytes: 2 * gib, GPUs: 2})
	h.commit()
	if got := jobIDs(a.assigns()); !equalIDs(got, one) {
		t.Fatalf("assigned %v, want only the one-GPU job %v (not the two-GPU %v)", got, one, two)
	}
}

// Why names the constraint that rules out each queue and agent.
func TestWhy(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.b.PutQueue(queue.Queue{Name: "full", Kind: queue.Grid, Status: queue.Online, MaxRunning: 1})
	h.b.PutQueue(queue.Queue{Name: "drained", Kind: queue.Grid, Status: queue.Draining})
	busy := h.connect("busy", "full")
	busy.want(1)
	h.addTask(taskOpts{})
	h.commit()
	busy.assigns()
	busy.want(1)
	short := h.hello("short", "")
	short.Deadline = h.clk.Now().Add(10 * time.Minute).Unix()
	s := h.connectHello(short)
	s.want(1)
	_, ids := h.addTask(taskOpts{walltime: time.Hour, gpus: 1, gpuModel: "A100"})
	h.commit()
	why, ok := h.b.Why(ids[0])
	if !ok || why.State != "ready" {
		t.Fatalf("why = %+v, %v", why, ok)
	}
	reasons := map[string]string{}
	for _, l := range append(why.Queues, why.Agents...) {
		reasons[l.Name] = l.Reason
	}
	for name, want := range map[string]string{
		"drained":    "draining",
		"full":       "limit of 1 running",
		"name-busy":  "limit of 1 running",
		"name-short": "walltime too long",
	} {
		if !strings.Contains(reasons[name], want) {
			t.Errorf("why for %s = %q, want it to say %q", name, reasons[name], want)
		}
	}
	if !strings.Contains(why.Summary, "share default") {
		t.Errorf("summary %q does not say where the share stands", why.Summary)
	}
	if _, ok := h.b.Why(999); ok {
		t.Error("why for an unknown job")
	}
}

// When a job ends in a queue at its limit, the queue's other waiting
// agents are offered work at once, not only the agent whose job ended.
func TestLimitFreedOffersOtherAgents(t *testing.T) {
	h := newHarness(t, defaultConfig())
	h.b.PutQueue(queue.Queue{Name: "q", Kind: queue.Grid, Status: queue.Online, MaxRunning: 1})
	small := h.connect("small", "q")
	small.want(1)
	_, first := h.addTask(taskOpts{})
	h.commit()
	got := small.assigns()
	if !equalIDs(jobIDs(got), first) {
		t.Fatalf("small got %v", jobIDs(got))
	}
	big := h.connect("big", "q")
	big.wantW(&wire.Want{Slots: 1, Cores: 2, MemoryBytes: gib})
	_, two := h.addTask(taskOpts{cores: 2})
	h.commit()
	if n := len(big.assigns()); n != 0 {
		t.Fatalf("queue at its limit of 1 gave big %d jobs", n)
	}
	small.mustReport(got[0], &wire.Report{}) // small asks for nothing more
	if got := jobIDs(big.assigns()); !equalIDs(got, two) {
		t.Fatalf("after the limit freed, big got %v, want %v", got, two)
	}
}

// A GPU node that held its free slots back for GPU work takes CPU work as
// soon as that GPU work is gone elsewhere.
func TestGPUHoldReleased(t *testing.T) {
	h := newHarness(t, defaultConfig())
	gpuNode := h.connect("gpu", "")
	gpuNode.wantW(&wire.Want{Slots: 4, Cores: 4, MemoryBytes: 4 * gib}) // its GPUs are all busy
	_, gpuJob := h.addTask(taskOpts{gpus: 1})
	_, cpu := h.addTask(taskOpts{jobs: 2})
	h.commit()
	if got := gpuNode.assigns(); len(got) != 0 {
		t.Fatalf("GPU node took %v while GPU work it could run waits", jobIDs(got))
	}
	other := h.connect("other-gpu", "")
	other.wantW(&wire.Want{Slots: 1, Cores: 1, MemoryBytes: gib, GPUs: 1})
	h.commit()
	if got := jobIDs(other.assigns()); !equalIDs(got, gpuJob) {
		t.Fatalf("other GPU node got %v, want the GPU job %v", got, gpuJob)
	}
	if got := jobIDs(gpuNode.assigns()); !equalIDs(got, cpu) {
		t.Fatalf("once no GPU work waits, the GPU node got %v, want the CPU jobs %v", got, cpu)
	}
}

// busyNode connects an agent whose node has the given cores (4 GiB each)
// and grants them all, so that it takes that many one-core jobs of the
// work waiting; it returns the agent and those assignments.
func (h *harness) busyNode(name string, cores int) (*agent, []*wire.Assign) {
	hello := h.hello(name, "")
	hello.Resources = wire.Resources{Cores: cores, MemoryBytes: int64(cores) * 4 * gib}
	a := h.connectHello(hello)
	a.want(cores)
	h.commit()
	return a, a.assigns()
}

// A job that needs a whole node is not starved by a stream of one-core
// jobs: once it has waited ReserveAfter, the next agent whose node could run
// it drains (takes no other work) until it fits. Without reservations it
// waits forever here.
func TestLargeJobsReserveAnAgent(t *testing.T) {
	for _, reserve := range []time.Duration{0, 10 * time.Minute} {
		cfg := defaultConfig()
		cfg.ReserveAfter = reserve
		h := newHarness(t, cfg)
		small, _ := h.addTask(taskOpts{jobs: 1000})
		a, running := h.busyNode("node", 4)
		big, bigIDs := h.addTask(taskOpts{cores: 4, priority: 10})
		bigAt := -1
		draining := false
		for step := range 40 {
			h.clk.Advance(time.Minute)
			a.done(running[0])
			running = append(running[1:], a.assigns()...)
			if len(running) > 0 && running[len(running)-1].TaskID == big.ID {
				bigAt = step
				break
			}
			if len(running) < 4 && !draining { // the agent holds a freed core back
				draining = true
				w, _ := h.b.Why(bigIDs[0])
				if len(w.Agents) != 1 || !strings.Contains(w.Agents[0].Reason, "draining for this task") {
					t.Errorf("why of the big job while draining: %+v", w.Agents)
				}
				if step < 9 {
					t.Errorf("the agent started draining after %d minutes, want 10", step+1)
				}
			}
		}
		t.Logf("reserve after %v: the 4-core job started at step %d (-1: never); drained: %v", reserve, bigAt, draining)
		switch {
		case reserve == 0 && bigAt >= 0:
			t.Fatalf("without reservations the 4-core job ran after %d minutes; the test cannot show starvation", bigAt+1)
		case reserve > 0 && bigAt < 0:
			t.Fatalf("with reservations after %v the 4-core job never ran (small task %d took every freed core)", reserve, small.ID)
		case reserve > 0 && bigAt > 9+4:
			t.Fatalf("the 4-core job ran after %d minutes, want at most 10 of waiting + 4 of draining", bigAt+1)
		}
		if reserve > 0 {
			// The reservation is spent: freed cores go to small jobs again.
			a.done(running[len(running)-1])
			if got := a.assigns(); len(got) == 0 {
				t.Fatal("after the 4-core job the agent took no more work")
			}
		}
	}
}

// Draining idles cores, so only one agent in 50 (at least one) drains at a
// time, however many large jobs are overdue.
func TestDrainingIsCapped(t *testing.T) {
	cfg := defaultConfig()
	cfg.ReserveAfter = 10 * time.Minute
	h := newHarness(t, cfg)
	h.addTask(taskOpts{jobs: 1000})
	var agents []*agent
	var running [][]*wire.Assign
	for i := range 10 {
		a, r := h.busyNode(fmt.Sprintf("node-%d", i), 4)
		agents, running = append(agents, a), append(running, r)
	}
	for range 5 {
		h.addTask(taskOpts{cores: 4, priority: 10})
	}
	h.clk.Advance(11 * time.Minute)
	held := 0
	for i, a := range agents {
		a.done(running[i][0])
		if len(a.assigns()) == 0 {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("%d of 10 agents held a freed core back for the overdue 4-core jobs, want 1", held)
	}
}

// While an agent drains for one task, why says so for the other tasks'
// jobs.
func TestWhyDraining(t *testing.T) {
	cfg := defaultConfig()
	cfg.ReserveAfter = time.Minute
	h := newHarness(t, cfg)
	_, smallIDs := h.addTask(taskOpts{jobs: 10})
	a, running := h.busyNode("node", 2)
	big, _ := h.addTask(taskOpts{cores: 2, priority: 10})
	h.clk.Advance(2 * time.Minute)
	a.done(running[0])
	if got := a.assigns(); len(got) != 0 {
		t.Fatalf("a draining agent took %v", tasksOf(got))
	}
	w, _ := h.b.Why(smallIDs[len(smallIDs)-1])
	if len(w.Agents) != 1 || !strings.Contains(w.Agents[0].Reason, fmt.Sprintf("draining for task %d", big.ID)) {
		t.Fatalf("why of a small job: %+v", w.Agents)
	}
}

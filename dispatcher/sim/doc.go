// Package sim replays a workload trace through the dispatcher's broker in
// simulated time, to ask what-if questions of queues, agents and shares:
// what fraction of the slots each share gets against its target, how long
// its jobs wait, how busy the slots are and when the last job ends.
//
// # Trace
//
// A trace is CSV with a header row, or JSON: an array of objects, or one
// object per line (JSON lines), with the CSV column names as keys. Each row
// is a task of identical jobs submitted together. Columns may come in any
// order; an unknown column is an error, an empty cell (or a JSON null)
// takes the default. CSV lines starting with '#' are comments.
//
//	column     meaning                                            default
//	submit_s   submit time, seconds from the trace's start        required
//	runtime_s  seconds each job runs                              required
//	jobs       identical jobs the row stands for                  1
//	cores      cores per job                                      1
//	memory     memory per job: bytes, or 2GiB, 512M, ...          512MiB
//	gpus       GPUs per job                                       0
//	gpu_model  regular expression the GPU model must match        any
//	walltime   walltime requested: seconds, or 1h30m, 2:00:00     1h, or the runtime if longer
//	share      fair share path, such as prod/mc                   default
//	priority   priority within the share                          0
//	queue      the only queue whose agents may take it            any queue
//
// A job whose runtime exceeds its walltime is killed at its walltime (as a
// pilot does) and counted in walltime_exceeded.
//
// # Queues
//
// The queues file is a YAML list of queues: the fields of a queue
// definition (name, kind, status, max_running, max_cores, max_gpu_jobs,
// shares, labels) and the agents it has:
//
//	# queues.yaml
//	- name: cern
//	  max_cores: 4000
//	  agents:
//	    - count: 500        # identical agents (pilots)
//	      cores: 8
//	      memory: 16GiB
//	      lifetime: 48h     # optional: the pilot's own walltime (alias: walltime)
//	    - count: 20
//	      cores: 32
//	      memory: 256GiB
//	      gpus: 4
//	      gpu_model: NVIDIA A100-SXM4-40GB
//	      gpu_memory: 40GiB
//
// Agent fields: count, cores (required), memory (default 2GiB per core),
// gpus, gpu_model, gpu_memory, arch, lifetime. Without a queues file the
// cluster is DefaultQueues: queue "default" with 100 agents of 8 cores and
// 16GiB. Agents of draining or offline queues are
// not started. A pilot with a lifetime takes only jobs whose walltime ends
// before its own, and is replaced by a fresh one when it ends; the first
// pilots of a group end at staggered times (the i-th of n after
// lifetime*(i+1)/n), as on a site that has been running a while.
//
// # Shares
//
// The shares file is a YAML list of targets, in percent of the parent:
//
//	# shares.yaml
//	- {path: prod, target: 70}
//	- {path: prod/mc, target: 60}
//	- {path: user, target: 30}
//
// Shares without a target split what their siblings leave, as in the
// dispatcher. With a shares file, a row must name one of its shares (or
// default) that has no sub-shares, as the dispatcher's submit requires;
// other rows are unrunnable. Without one, shares come into being as rows
// name them, without targets.
//
// # Replay
//
// Agents connect to a broker whose clock is the simulation's; every job a
// trace row stands for is submitted at its submit time, and runs for its
// runtime once the broker assigns it. The simulation grants agents credit
// one at a time, in a fixed order, so that the same trace gives the same
// result (the broker offers new work to waiting agents in map order).
// Jobs that fit no agent of any queue that could take them are not
// submitted and are reported as unrunnable, as are jobs still waiting when
// nothing else can happen.
//
// Results per share: achieved is the share's core-seconds in percent of
// its parent's over the whole replay; achieved_contended counts only the
// time during which every sibling with runnable work had jobs waiting,
// which is when fair share decides; waits are from submit to assignment.
// Utilisation is the core-seconds used over the cores of the started
// agents times the makespan (first submit to last job end).
package sim

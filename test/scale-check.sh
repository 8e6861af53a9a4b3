#!/bin/bash
# Issue 3's scale benchmarks with the dispatcher on 2 cores of its own and
# the simulated agents on the others: for a machine with more cores than
# the 2-core development machines (e.g. a lent 16-core device machine),
# where the simulator no longer competes with the dispatcher for its CPUs.
# Build here, carry the binary, run from the repository root:
#   go build -tags "$TAGS" -ldflags "-s -w" -o .dev/pando ./cmd/pando   (.dev/ in .git/info/exclude)
#   PANDO=.dev/pando OUT=dir bash test/scale-check.sh        (~5 minutes)
#   FULL=1 ...                                               (+ 100,000 agents for 10 minutes)
# Results are JSON files in $OUT; record them in BENCHMARKS.md.
set -u
P=${PANDO:-$PWD/bin/pando}
OUT=${OUT:-$(mktemp -d)}
N=$(nproc)
if [ "$N" -lt 4 ]; then
	echo "scale-check: needs at least 4 CPUs (2 for the dispatcher, the rest for the simulator); this machine has $N" >&2
	exit 2
fi
D=0-1            # the dispatcher's cores
S=2-$((N - 1))   # the simulator's
ulimit -n 1048576 2>/dev/null
sysctl -qw net.core.rmem_max=8388608 net.core.wmem_max=8388608 2>/dev/null
echo "cpus $N: dispatcher on $D, simulator on $S; $(grep -m1 'model name' /proc/cpuinfo)" | tee $OUT/machine.txt
run() { # name, bench args...
	local name=$1; shift
	echo "== $name: pando bench $*"
	taskset -c $S $P bench "$@" --dispatcher-cpus $D -o json > $OUT/$name.json 2> $OUT/$name.err
	echo "rc=$? $(cat $OUT/$name.json)"
	tail -3 $OUT/$name.err
}
run dispatch  dispatch --agents 1000 --jobs 200000
run dispatch2 dispatch --agents 1000 --jobs 200000
run latency   latency --agents 10000 --rate 1000 --duration 10s --max-rate 16000
run agents20k agents --agents 20000 --duration 60s
if [ "${FULL:-}" = 1 ]; then
	run agents100k agents --agents 100000 --duration 10m
fi

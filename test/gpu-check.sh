#!/bin/bash
# GPU check for a machine with an NVIDIA GPU (the lent device machines):
# the real NVML probe, and GPU jobs through a dispatcher and a pilot on
# loopback. Needs python3 with PyTorch there. Run from the repository root:
#   PANDO=path/to/pando bash test/gpu-check.sh   (results in BENCHMARKS.md)
set -x
P=${PANDO:-$PWD/bin/pando}
OUT=${OUT:-$(mktemp -d)}
export PANDO_TOKEN_FILE= 
D=$(mktemp -d)
nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
$P probe -o json > $OUT/probe.json; cat $OUT/probe.json
$P probe
$P dispatcher --data $D/data --agents 127.0.0.1:7443 --http 127.0.0.1:7480 > $OUT/dispatcher.log 2>&1 &
for i in $(seq 50); do [ -f $D/data/admin.token ] && break; sleep 0.2; done
export PANDO_TOKEN_FILE=$D/data/admin.token
$P pilot --dispatcher 127.0.0.1:7443 --token-file $D/data/admin.token --ca-file $D/data/ca.pem --workdir $D/work > $OUT/pilot.log 2>&1 &
PY=$(command -v python3)
cat > $D/gpu.yaml <<T
command: ["$PY", "-c", "import os,torch; print('CUDA_VISIBLE_DEVICES', os.environ.get('CUDA_VISIBLE_DEVICES'), 'PANDO_GPUS', os.environ.get('PANDO_GPUS')); print('torch sees', torch.cuda.device_count(), torch.cuda.get_device_name(0)); x=torch.ones(4096,4096,device='cuda'); print('sum', (x@x).sum().item())"]
resources: {gpus: 1, cores: 1, walltime: 5m}
T
cat > $D/two.yaml <<T
command: ["/bin/true"]
resources: {gpus: 2, cores: 1}
T
cat > $D/hide.yaml <<T
command: ["$PY", "-c", "import torch; print('cpu-only job: torch sees', torch.cuda.device_count(), 'GPUs')"]
T
id=$($P submit $D/gpu.yaml); id2=$($P submit $D/two.yaml); id3=$($P submit $D/hide.yaml)
timeout ${W:-240} $P wait $id; echo "wait rc=$?"
timeout ${W:-60} $P wait $id3; echo "wait3 rc=$?"
$P jobs --task $id; $P jobs --task $id3
for t in $id $id3; do j=$($P jobs --task $t -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'); $P job $j; $P logs $j; done
echo "two-GPU task on a one-GPU pilot (must stay waiting):"; $P jobs --task $id2
$P agents
kill %2; sleep 1; kill %1; wait

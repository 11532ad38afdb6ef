#!/usr/bin/env bash
# Issue 3's GPU proof on an NVIDIA machine: `repeat` on KIND_GPU with gpu_hold_mib 2048
# (each stub holds 2 GiB of device memory while READY); sluice-lifecycle checks through
# NVML that the memory is held while READY and released after unload, after streaming and
# after non-streaming traffic. Usage: bench/gpu_lifecycle.sh BIN_DIR OUT_DIR
# BIN_DIR holds sluice, sluice-stub and sluice-lifecycle (built on a CPU machine).
set -uo pipefail
bin=$1
out=$2
repo=$(mktemp -d)
mkdir -p "$repo/repeat_gpu/1"
cat > "$repo/repeat_gpu/config.pbtxt" <<'CFG'
name: "repeat_gpu"
backend: "repeat"
max_batch_size: 0
model_transaction_policy { decoupled: true }
input [ { name: "IN" data_type: TYPE_INT32 dims: [ -1 ] },
        { name: "DELAY" data_type: TYPE_UINT32 dims: [ -1 ] optional: true },
        { name: "WAIT" data_type: TYPE_UINT32 dims: [ 1 ] optional: true } ]
output [ { name: "OUT" data_type: TYPE_INT32 dims: [ 1 ] },
         { name: "IDX" data_type: TYPE_UINT32 dims: [ 1 ] } ]
instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0 ] } ]
parameters { key: "gpu_hold_mib" value { string_value: "2048" } }
CFG
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.total --format=csv | tee "$out/gpu.txt"
"$bin/sluice" --model-repository "$repo" --model-control-mode explicit --http-port 8000 --grpc-port 8001 \
  --metrics-port 8002 > "$out/sluice.log" 2>&1 &
server=$!
sleep 2
echo "== streaming and non-streaming" | tee "$out/lifecycle.txt"
"$bin/sluice-lifecycle" -m repeat_gpu --preset repeat --unload-at-end --json "$out/lifecycle_streaming.json" 2>&1 | tee -a "$out/lifecycle.txt"
echo "== non-streaming only" | tee -a "$out/lifecycle.txt"
"$bin/sluice-lifecycle" -m repeat_gpu --preset repeat --streams 0 --no-cancel --no-disconnect --unload-at-end \
  --json "$out/lifecycle_nonstreaming.json" 2>&1 | tee -a "$out/lifecycle.txt"
curl -s localhost:8002/metrics | grep -E "^nv_gpu|^sluice_model_gpu|^sluice_model_unload" > "$out/metrics.txt"
kill -TERM $server
wait $server
echo "sluice exit: $?" | tee -a "$out/lifecycle.txt"
nvidia-smi --query-gpu=memory.used --format=csv | tee -a "$out/gpu.txt"

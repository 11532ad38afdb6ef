#!/usr/bin/env bash
# The wgmma prefill attention (attention_prefill_wgmma.cu, attention_prefill_ws.cu) on an H100 or
# H200, in one call: the attention kernel tests with each SLUICE_CUDA_PREFILL_WGMMA value as the
# default path (5, 4 and 3: warp-specialized, with the overlap of 2 and the warpgroups' turns,
# without either, with the turns alone; 2: the
# overlapped schedule; 1: the products in sequence, the default since it measured faster in
# session 17; 0: the mma.sync kernel; the wgmma tests also run every schedule by name), then
# prefill_attention_bench timing each schedule in one run (--schedules: a line each under the
# length's row; mma_sync_ms is the mma.sync kernel in the same run) at Qwen2-7B's heads, and at
# head_dim 64.
# Usage: bench/gpu_wgmma_prefill.sh BUILD_DIR [S ...]   (default S: 1800 7000 20000 32000)
set -uo pipefail
b=${1:?usage: bench/gpu_wgmma_prefill.sh BUILD_DIR [S ...]}
shift
lengths=${*:-1800 7000 20000 32000}
for w in 5 4 3 2 1 0; do
  echo "== attention tests, SLUICE_CUDA_PREFILL_WGMMA=$w"
  SLUICE_CUDA_PREFILL_WGMMA=$w timeout 400 tests/gpu/run_on_gpu.sh "$b/tests/cuda_kernels_test" \
    --gtest_filter='*Attention*' | grep -E "FAILED|PASSED|SKIPPED|Failure|mismatch|info|rc=" | head -30
done
echo "== prefill_attention_bench, wgmma schedules 1 to 5"
# shellcheck disable=SC2086
timeout 400 "$b/tests/prefill_attention_bench" --iters 5 --no-cuda-cores --schedules 1,2,3,4,5 \
  $lengths
timeout 200 "$b/tests/prefill_attention_bench" --iters 5 --no-cuda-cores --schedules 1,2,3,4,5 \
  --q-heads 32 --kv-heads 8 --head-dim 64 1800 20000

#!/usr/bin/env bash
# For the next GPU call (written in session 27, unrun). LIMIT=420 on an H100.
# Session 27 found the Hopper GEMM's chunk bound by its computing warps' instruction streams
# (~200 SASS instructions a warp a chunk at ~7 cycles each against 1,024 cycles of wgmmas for
# the block; RESULTS "Session 27"); moving the dequantization to warps of its own made it
# slower (shared-memory traffic). What the next change needs measured first:
# 1. Where gate|up's chunk goes at 2,048 rows: Nsight Compute's stall reasons and its source
#    counters on that launch alone (q|k|v's two launches and o's come first).
# 2. The step order's GEMM (order 1: one 16-byte load a lane a chunk, no word selection)
#    against the load order's (2, the default for group 128), 4 and 8 bits: what the SEL / SHF
#    word selection and the per-step group checks cost.
# 3. Session 26's unrun checks: Int8's 2,000-token TTFT with the GEMM to 1,024 (default) /
#    2,048 rows; Int4 at 32 streams with the small-batch kernel to 32 rows (the old routing)
#    against the default.
# 0. Session 27's review test, never run on a GPU: Bf16TensorMap2d's refusals.
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
gpu_tests 'TensorMapTest.*' 30
# On an H200 (never started before): issue 17's batch-1 targets first, with the card's copy
# bandwidth (Int4 >= 500, Int8 >= 350 output tok/s, 1 stream, 128 in / 128 out).
if grep -q H200 $R/gpu.txt; then
  python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
  echo "H200 batch 1: models $(wait_model $m4) / $(wait_model $m8) / $(wait_model $m) $(el)"
  streamsq int4 1; streamsq int8 1; streams7 1
fi
export SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048
echo "1. ncu, gate|up at 2,048 rows $(el)"
LD_LIBRARY_PATH=$G/lib timeout 150 ncu --clock-control none -k regex:GptqGemm90Kernel \
  --launch-skip 3 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section SchedulerStats --section SourceCounters $B/real/gptq_product_bench --bits 4 \
  --iters 1 --reps 1 2048 > $R/ncu_gateup.txt 2>&1
echo "rc=$?"; grep -E "GptqGemm90Kernel|Duration|Issue Slots|Warp Cycles Per Issued|Stall|stall" \
  $R/ncu_gateup.txt | head -40
for bits in 4 8; do
  for order in 2 1; do
    echo "2. order $order, $bits bits $(el)"
    $B/gptq_product_bench --bits $bits --order $order --iters 7 256 1024 2048 | grep -vE "^swiglu"
  done
done
unset SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS
echo "3. models: $(wait_model $m4) / $(wait_model $m8) / $(wait_model $m) $(el)"
for mr in 1024 2048; do
  echo "3. int8 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr ttftq int8
done
ttft7
echo "3. int4 32 streams: default / the old routing"
streamsq int4 32
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=32 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=33 streamsq int4 32
streams7 32
echo "done $(el)"

#!/usr/bin/env bash
# For the next GPU call (written in sessions 27 and 28, unrun: every device try of session 28
# failed to start or was refused). LIMIT=500 on an H100.
# Build first (here): the pack from main (bench/pack_gpu_binaries.sh), its gptq_product_bench
# kept as .gpu/base/gq_base.xz (xz -T2); then `git apply bench/pending/gemm90_loop_trims.patch`,
# built and packed (the pack's binaries are the trims'). Commit the patch's code (and delete
# the patch) only if phase 0's tests pass and phase 0b says it is no slower.
# Session 27 found the Hopper GEMM's chunk bound by its computing warps' instruction streams
# (~200 SASS instructions a warp a chunk at ~7 cycles each against 1,024 cycles of wgmmas for
# the block; RESULTS "Session 27"). Session 28's trims (RESULTS "Session 28": the stage index
# and parity carried instead of c % kStages, the descriptors' low words added, one add for
# -(128 + zero), the lane kept in a register) take the 4-bit 256 x 128 loop from 726 to 685
# instructions a round of 3 chunks.
# 0. The GEMM tests with the trims, the clusters-past-capacity fallback (session 28) and the
#    tensor map's refusals (session 27), never run on a GPU.
# 0b. gq_base / the trims', each in turn, twice.
# 1. Nsight Compute on gate|up at 2,048 rows alone: stall reasons, and the source page's
#    per-instruction samples (bench/ncu_source_top.py).
# 2. The step order's GEMM against the load order's (word selection vs per-step group checks).
# 3. TTFT at 2,000 tokens, Int4 (and Int8) with the GEMM to 2,048 rows / 1,024 (default), bf16;
#    Int4 at 32 streams with the old routing against the default.
source bench/gpu_call_setup.sh
write_models_bg int4 bf16 int8
gpu_tests 'TensorMapTest.*:CudaGptqTest.Gemm*' 100
# 0b. Session 28's trims of the computing warps' loop (.gpu/base/gq_base: main's binary) against
#     the pack's.
xz -dc .gpu/base/gq_base.xz > $B/real/gq_base && chmod +x $B/real/gq_base
gqab() {  # gqab BITS ROWS...: each binary in turn
  local bits=$1; shift
  for bin in gq_base gptq_product_bench gq_base gptq_product_bench; do
    echo "0b. $bits bits, $bin $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 LD_LIBRARY_PATH=$G/lib $B/real/$bin --bits $bits \
      --iters 7 "$@" | grep -E "^(q\||o |gate|down)"
  done
}
gqab 4 1024 2048; gqab 8 2048
# On an H200 (never started before): issue 17's batch-1 targets first, with the card's copy
# bandwidth (Int4 >= 500, Int8 >= 350 output tok/s, 1 stream, 128 in / 128 out).
if grep -q H200 $R/gpu.txt; then
  python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
  echo "H200 batch 1: models $(wait_model $m4) / $(wait_model $m8) / $(wait_model $m) $(el)"
  streamsq int4 1; streamsq int8 1; streams7 1
fi
echo "1. ncu, gate|up at 2,048 rows $(el)"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 LD_LIBRARY_PATH=$G/lib timeout 120 ncu --clock-control none \
  -k regex:GptqGemm90Kernel --launch-skip 3 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SchedulerStats --section SourceCounters --import-source no \
  -o $R/gateup $B/real/gptq_product_bench --bits 4 --iters 1 --reps 1 2048 > $R/ncu_run.txt 2>&1
echo "rc=$?"
timeout 30 ncu -i $R/gateup.ncu-rep --page details > $R/ncu_gateup.txt 2>&1
timeout 60 ncu -i $R/gateup.ncu-rep --page source --csv --print-source sass > $R/gateup_sass.csv 2>&1
echo "sass rows: $(wc -l < $R/gateup_sass.csv)"
python3 bench/ncu_source_top.py $R/gateup_sass.csv --top 30 2>&1 | tee $R/gateup_top.txt | head -60
grep -E "Duration|Issue Slots|Warp Cycles Per Issued|Eligible|Active Warps|stall|Stall" \
  $R/ncu_gateup.txt | head -30
echo "3. models: $(wait_model $m4) / $(wait_model $m) $(el)"
for mr in 2048 1024; do
  echo "3. int4 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr ttftq int4
done
ttft7
for bits in 4 8; do
  for order in 2 1; do
    [ "$(left)" -gt 60 ] || break
    echo "2. order $order, $bits bits $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 $B/gptq_product_bench --bits $bits --order $order \
      --iters 7 1024 2048 | grep -E "^(q\||o |gate|down)"
  done
done
echo "3. models: $(wait_model $m8) $(el)"
for mr in 1024 2048; do
  echo "3. int8 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr ttftq int8
done
echo "3. int4 32 streams: default / the old routing"
streamsq int4 32
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=32 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=33 streamsq int4 32
streams7 32
echo "done $(el)"

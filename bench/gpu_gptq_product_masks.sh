#!/usr/bin/env bash
# Session 15, call 2 (bench/RESULTS.md): the GPTQ small-batch product A/B (scale ahead, warps
# a tile) and its counters, the GPTQ tests, structured output's steady-state cost, Int4 end to
# end. SLUICE_CUDA_GPTQ_SCALE_AHEAD and SLUICE_CUDA_GPTQ_MMA_WARPS were the A/B's knobs (the
# scales requested a group ahead and 8 warps a tile won; both knobs removed after it).
source bench/gpu_call_setup.sh
write_models_bg
P=$B/gptq_product_bench
for v in "ahead=1 warps=8:SLUICE_CUDA_GPTQ_SCALE_AHEAD=1 SLUICE_CUDA_GPTQ_MMA_WARPS=8" \
         "ahead=0 warps=8:SLUICE_CUDA_GPTQ_SCALE_AHEAD=0 SLUICE_CUDA_GPTQ_MMA_WARPS=8" \
         "ahead=1 warps=4:SLUICE_CUDA_GPTQ_SCALE_AHEAD=1 SLUICE_CUDA_GPTQ_MMA_WARPS=4" \
         "ahead=1 warps=2:SLUICE_CUDA_GPTQ_SCALE_AHEAD=1 SLUICE_CUDA_GPTQ_MMA_WARPS=2"; do
  name=${v%%:*}; envs=${v#*:}
  echo "== bench 4-bit $name"; env $envs SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=64 timeout 60 $P 1 2 4 8 16 32 64 2>&1 | tee $R/bench4_${name// /_}.txt
done
echo "== bench 8-bit ahead=1 warps=8"; SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=64 timeout 60 $P --bits 8 1 4 16 32 64 2>&1 | tee $R/bench8.txt
echo "1. benches $(el)"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1); echo "ncu: $NCU"
timeout 120 $NCU --clock-control none -k regex:GptqMma --launch-count 8 --section SpeedOfLight \
  --section WarpStateStats --section Occupancy --section MemoryWorkloadAnalysis --section LaunchStats \
  $P --iters 1 --reps 1 1 > $R/ncu_rows1.txt 2>&1
echo "2. ncu rc=$? $(el)"; grep -E "GptqMma|Duration|Memory Throughput|DRAM Throughput|Achieved Occupancy|Stall|Warp Cycles Per Issued" $R/ncu_rows1.txt | head -60
for rows in 32 64; do
  SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$rows timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_$rows.txt 2>&1
  echo "3. gptq tests max_rows=$rows rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_$rows.txt | head -6
done
echo "4. bf16 model: $(wait_model $m) $(el)"
fuzz_pause
MASK_SWITCHES=1 MASK_OUTPUT_LEN=256 MASK_WAVES=1 MASK_ROUNDS=2 g7 masks
fuzz_resume
rm -rf $m
echo "5. int4 model: $(wait_model $m4) $(el)"
AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,base,noahead:SLUICE_CUDA_GPTQ_SCALE_AHEAD=0
KEEP_MODEL=1 CONCURRENCY="32 64" MAX_NUM_SEQS=64 gq int4,sluice
kill $writer 2>/dev/null; pkill -f make_qwen2_7b 2>/dev/null
echo "done $(el)"

#!/usr/bin/env bash
# Session 19, call A (bench/RESULTS.md "Session 19"): where a long prompt's time goes and the
# open Int4 stream figures.
# 1. Prefill attention alone at a chunk's offset into a cached context (the server's chunked
#    prefill: 4,096 or 8,192 new tokens after 0 to 27,904 cached) against one launch of all
#    32,000 tokens (the figure quoted so far).
# 2. bf16 TTFT at 7,000 and 32,000 tokens with max_num_batched_tokens 4,096 (the bench's),
#    8,192 and 16,384: the chunk size's cost; transformers in the same run (4,096's).
# 3. Int4 at 1 and 32 streams: the default, SLUICE_CUDA_DECODE_EARLY_LAUNCH=0 and
#    SLUICE_CUDA_PDL=0 (session 17: 32 streams 3,586 tok/s with dependent launches, 4,245
#    without), bf16 at 32 streams in the same run.
# Also: Nsight Compute on the attention and the GPTQ GEMM; SHAPES=2's 192-column rule.
# 4. On an H200 only: Int8 at 1 stream (issue 17's batch-1 targets are an H200's).
source bench/gpu_call_setup.sh
m8=$W/int8/repo/qwen7b/1/model
h200=0; grep -q H200 $R/gpu.txt && h200=1
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m4/.complete
  [ $h200 = 1 ] && python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 &&
    touch $m8/.complete ) &
writer=$!
A="$B/prefill_attention_bench --iters 5 --no-cuda-cores"
{ for c in 0 4096 12288 27904; do $A --cached $c 4096; done
  for c in 0 8192 23808; do $A --cached $c 8192; done
  $A 32000; } > $R/attn_chunks.txt 2>&1
echo "1. attention $(el)"; grep -E "^ +[0-9]+ |cached" $R/attn_chunks.txt
# Nsight Compute's view of the same kernels (hardware counters: where the time goes), and of
# the Hopper GPTQ GEMM at 256 rows (its four products, one launch each).
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats"
for c in 27904:4096 0:32000; do
  timeout 90 $NCU --clock-control none $S -k regex:PrefillWgmma --launch-count 1 \
    $A --iters 1 --cached ${c%%:*} ${c#*:} > $R/ncu_attn_${c%%:*}.txt 2>&1
  echo "ncu attention $c rc=$? $(el)"
done
timeout 90 $NCU --clock-control none $S -k regex:GptqGemm90 --launch-count 8 \
  $B/gptq_product_bench --iters 1 --reps 1 256 > $R/ncu_gptq256.txt 2>&1
echo "ncu gptq rc=$? $(el)"
# SHAPES=2's 192 columns at 65-128 rows for gate|up and down: the GEMM tests, the products.
timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "gptq tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]" $R/tests_gptq.txt | head -8
$B/gptq_product_bench --iters 9 96 128 > $R/gptq_products.txt 2>&1; grep -E "^(q|o|gate|down)" $R/gptq_products.txt
grep -E "Duration|Compute \(SM\) Throughput|Memory Throughput|L2 Cache Throughput|Registers Per|Achieved Occupancy|Stall|Issue Slots Busy|Executed Ipc A|Grid Size" $R/ncu_attn_27904.txt | head -30
echo "2. bf16 model: $(wait_model $m) $(el)"
for b in 4096 8192 16384; do
  hf=1; [ $b = 4096 ] && hf=
  SKIP_HF=$hf MAX_BATCHED_TOKENS=$b LONG_STREAMS=0 LONG_LENGTHS="7000 32000" g7 long |
    grep -E "transformers|sluice |Failed" | sed "s/^/chunk $b: /"
  mkdir -p $R/chunk$b; mv $R/long_* $R/sluice_long.log $R/chunk$b/ 2>/dev/null
done
CONCURRENCY=32 g7 sluice | grep -E "c=32"
rm -rf $W/repo
echo "3. int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY="1 32" AB_ROUNDS=1 gq int4,ab,base,late0:SLUICE_CUDA_DECODE_EARLY_LAUNCH=0,nopdl:SLUICE_CUDA_PDL=0 |
  grep -E "c=|Failed|bytes read"
if [ $h200 = 1 ]; then
  while [ ! -f $m8/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done
  echo "4. int8 model: $(tail -1 $R/int8_write.txt) $(el)"
  CONCURRENCY=1 gq int8,sluice | grep -E "c=|Failed|bytes read"
fi
echo "done $(el)"

#!/usr/bin/env bash
# Session 21, call A (bench/RESULTS.md "Session 21"; written in session 20 as the next call,
# extended in 21): `LIMIT=560 FUZZ_WORKERS=none bash bench/gpu_s21_a.sh`, 277 s on an H100,
# with .gpu/base_attention_bench (built at 4e2d7f1). The phases go most wanted first.
# 1. The attention kernel tests (and the Hopper GPTQ GEMM's, its new 64-column blocks among
#    them: gptq_gemm90_plan.h): the softmax now skips O's rescale where no row of a warp has
#    a new maximum (exact: alpha is then 1; attention_prefill_wgmma.cuh Rescale), unrun on a GPU.
# 2. Prefill attention alone by schedule, and at a cached offset: this build, and the one before
#    that change when .gpu/base_attention_bench is there (prefill_attention_bench built at
#    4e2d7f1, stripped; session 20 kept a copy in /work/notes/base_attention_bench_4e2d7f1).
# 3. bf16 TTFT at 1,800 / 7,000 / 20,000 / 32,000 tokens with the long phase's 16,384 / 4,096
#    steps, schedule 4 (the default since session 20) and 1, transformers in the same run; 8 x
#    20,000 under the default.
# 3b. The step profile of a 7,000-token prompt in the server (per-op GPU time).
# 4. Int8 at 1, 32 and 256 streams, bf16 at 32 and 256, Int4 at 1 and 256, with the GPTQ
#    dependent launches off (session 20's default; call A measured Int8 with them on: 3,435 /
#    12,844 tok/s).
# 5. Nsight Compute's stall reasons for the attention (schedules 4 and 1) and the Hopper GPTQ
#    GEMM at 256 rows, if time is left.
source bench/gpu_call_setup.sh
write_models_bg bf16 int8 int4
timeout 150 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.*:CudaGptqTest.Gemm90*' > $R/tests_attention.txt 2>&1
echo "1. attention tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_attention.txt | head -12
A="--iters 5 --no-cuda-cores --schedules 1,3,4"
for v in base new; do
  bin=$B/prefill_attention_bench
  if [ $v = base ]; then
    [ -f .gpu/base_attention_bench ] || continue
    bin=.gpu/base_attention_bench; chmod +x $bin
  fi
  { timeout 100 $bin $A 1800 7000 20000 32000; timeout 30 $bin $A --cached 27904 4096; } \
    > $R/attn_$v.txt 2>&1
  echo "2. attention $v rc=$? $(el)"; grep -vE "^\s*$" $R/attn_$v.txt | grep -E "^ +[0-9]|wgmma" | head -24
done
echo "3. bf16 model: $(wait_model $m) $(el)"
for s in 4 1; do
  hf=1; [ $s = 4 ] && hf=
  streams=0; [ $s = 4 ] && streams=8
  SLUICE_CUDA_PREFILL_WGMMA=$s SKIP_HF=$hf LONG_STREAMS=$streams \
    LONG_LENGTHS="1800 7000 20000 32000" g7 long | grep -E "transformers|sluice |Failed" | sed "s/^/sched $s: /"
  mkdir -p $R/sched$s; mv $R/long_* $R/sluice_long.log $R/sched$s/ 2>/dev/null
done
# 3b. Where a 7,000-token prompt's in-server time goes (call A's TTFT 166.6 ms against ~134 ms
#     of its kernels timed alone): the step profiler's per-op GPU time of the eager steps.
MAX_MODEL_LEN=8192 MAX_BATCHED_TOKENS=16384 ISL=7000 OSL=4 PROFILE_MODES=eager g7 profile | tail -40
grep -E "Mean TTFT|Mean ITL" $R/profile_eager_bench.txt; echo "3b. $(el)"
echo "4. int8 model: $(wait_model $m8) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="1 32 256" gq int8,sluice | grep -E "c=|Failed"
MAX_NUM_SEQS=256 CONCURRENCY="32 256" g7 sluice | grep -E "c=|Failed"
rm -rf $W/repo
echo "int4 model: $(wait_model $m4) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="1 256" gq int4,sluice | grep -E "c=|Failed"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters --print-details all"
for s in 4 1; do
  [ "$(left)" -gt 60 ] || break
  SLUICE_CUDA_PREFILL_WGMMA=$s timeout 60 $NCU --clock-control none $S -k regex:PrefillW --launch-count 1 \
    $B/prefill_attention_bench --iters 1 --no-cuda-cores 20000 > $R/ncu_attn_s$s.txt 2>&1
  echo "5. ncu schedule $s rc=$? $(el)"
  grep -E "Duration|Compute \(SM\) Throughput|Eligible Warps|Issue Slots|Warp Cycles Per Issued|Stall" $R/ncu_attn_s$s.txt | head -20
  [ $s = 4 ] && [ "$(left)" -gt 60 ] || continue
  # The Hopper GPTQ GEMM's stall reasons (session 19: tensor pipe 38 %, 0.52 eligible warps).
  timeout 60 $NCU --clock-control none $S -k regex:GptqGemm90 --launch-count 1 \
    $B/gptq_product_bench --iters 1 --reps 1 256 > $R/ncu_gemm90.txt 2>&1
  echo "5. ncu GPTQ GEMM rc=$? $(el)"
  grep -E "Duration|Eligible Warps|Issue Slots|Warp Cycles Per Issued|Stall" $R/ncu_gemm90.txt | head -20
done
echo "done $(el)"

#!/usr/bin/env bash
# Session 18, call B (bench/RESULTS.md "Session 18"): Int4.
#  1. The GPTQ tests: the dequantization one product ahead (gptq_dequant_ahead.h), the Hopper
#     GEMM's new block shapes forced around their tile boundaries (gptq_gemm90_plan.h).
#  2. The GPTQ products: every Hopper GEMM shape timed (--variants), the knob's three plans
#     (SLUICE_CUDA_GPTQ_GEMM90_SHAPES 0 / 1 / 2), and one row at 4 and 8 bits; cuBLASLt's
#     prefill products (bf16), the device's algorithm against the fastest of 16 timed.
#  3. Int4 TTFT at 2,000 and 7,000 tokens with the dequantization ahead and without
#     (SLUICE_CUDA_GPTQ_DEQUANT_AHEAD; issue 17: no worse than bf16's 44.6 ms at 2,000).
#  4. Int4 at 64 and 256 streams, SHAPES 0 against 1 and 2.
#  5. Int4 at 32 and 1 streams: which dependent launch costs 18 % at 32 streams (default /
#     SLUICE_CUDA_DECODE_EARLY_LAUNCH=0 / SLUICE_CUDA_PDL=0).
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 170 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests.txt 2>&1
echo "1. tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]" $R/tests.txt | head -12
P=$B/gptq_product_bench
timeout 60 $P --variants --iters 9 33 64 96 128 192 256 > $R/variants.txt 2>&1; cat $R/variants.txt
for s in 0 1 2; do
  SLUICE_CUDA_GPTQ_GEMM90_SHAPES=$s timeout 40 $P 33 64 128 256 > $R/shapes$s.txt 2>&1
  echo "2. SHAPES=$s $(el)"; grep -E "^(q|o |gate|down)" $R/shapes$s.txt
done
timeout 30 $P 1 > $R/bench4.txt 2>&1; grep -E "^(q|o |gate|down)|bandwidth" $R/bench4.txt
timeout 30 $P --bits 8 1 > $R/bench8.txt 2>&1; grep -E "^(q|o |gate|down)" $R/bench8.txt
timeout 60 $B/matmul_algo_bench > $R/matmul_algos.txt 2>&1; cat $R/matmul_algos.txt
echo "3. int4 model: $(wait_model $m4) $(el)"
for a in 1 0; do
  SLUICE_CUDA_GPTQ_DEQUANT_AHEAD=$a SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" KEEP_MODEL=1 \
    gq int4,long | grep -E "sluice |Failed" | sed "s/^/ahead=$a /"
  mkdir -p $R/ahead$a; mv $R/int4/long_* $R/ahead$a/ 2>/dev/null
done
echo "4. shapes end to end $(el)"
MAX_NUM_SEQS=256 AB_CONCURRENCY="64 256" AB_ROUNDS=1 KEEP_MODEL=1 \
  gq int4,ab,s0:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=0,s1:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=1,s2:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=2 |
  grep -E "c=|Failed|ab_"
echo "5. PDL $(el)"
AB_CONCURRENCY="32 1" AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,early,late0:SLUICE_CUDA_DECODE_EARLY_LAUNCH=0,nopdl:SLUICE_CUDA_PDL=0 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

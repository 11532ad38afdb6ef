#!/usr/bin/env bash
# Session 18, call C (bench/RESULTS.md "Session 18"): this session's three kernels-side changes
# in one call, Int4 end to end after.
#  1. The wgmma attention tests (every schedule by name: 3-5 are the warp-specialized ones,
#     attention_prefill_ws.cu), then each schedule timed at Qwen2-7B's heads.
#  2. The GPTQ tests: the dequantization one product ahead (gptq_dequant_ahead.h), the Hopper
#     GEMM's block shapes forced around their tile boundaries (gptq_gemm90_plan.h).
#  3. The GPTQ products: every Hopper GEMM shape timed (--variants), the knob's plans
#     (SLUICE_CUDA_GPTQ_GEMM90_SHAPES 0 / 1 / 2); cuBLASLt's prefill products, the device's
#     algorithm against the fastest of 16 timed (matmul_algo_bench).
#  4. Int4 TTFT at 2,000 and 7,000 tokens with the dequantization ahead and without.
#  5. Int4 at 64 and 256 streams, SHAPES 0 against 1 and 2.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 150 $T $B/cuda_kernels_test --gtest_filter='*Wgmma*' > $R/tests_attention.txt 2>&1
echo "1. attention tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|Failure|rc=" $R/tests_attention.txt | head -12
timeout 100 $B/prefill_attention_bench --iters 5 --no-cuda-cores --schedules 1,3,4,5 1800 7000 20000 32000 \
  > $R/attention_bench.txt 2>&1; cat $R/attention_bench.txt | tail -30
timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "2. GPTQ tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|Failure" $R/tests_gptq.txt | head -12
P=$B/gptq_product_bench
timeout 50 $P --variants --iters 9 33 64 128 192 256 > $R/variants.txt 2>&1; cat $R/variants.txt
for s in 0 1 2; do
  SLUICE_CUDA_GPTQ_GEMM90_SHAPES=$s timeout 30 $P 33 64 128 256 > $R/shapes$s.txt 2>&1
  echo "3. SHAPES=$s $(el)"; grep -E "^(q|o |gate|down)" $R/shapes$s.txt
done
timeout 50 $B/matmul_algo_bench > $R/matmul_algos.txt 2>&1; cat $R/matmul_algos.txt
echo "4. int4 model: $(wait_model $m4) $(el)"
for a in 1 0; do
  SLUICE_CUDA_GPTQ_DEQUANT_AHEAD=$a SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" KEEP_MODEL=1 \
    gq int4,long | grep -E "sluice |Failed" | sed "s/^/ahead=$a /"
  mkdir -p $R/ahead$a; mv $R/int4/long_* $R/ahead$a/ 2>/dev/null
done
echo "5. shapes end to end $(el)"
MAX_NUM_SEQS=256 AB_CONCURRENCY="64 256" AB_ROUNDS=1 KEEP_MODEL=1 \
  gq int4,ab,s0:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=0,s1:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=1,s2:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=2 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

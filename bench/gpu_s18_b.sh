#!/usr/bin/env bash
# Session 18, call B (bench/RESULTS.md "Session 18"): Int4.
#  1. The GPTQ tests (the dequantization one product ahead, gptq_dequant_ahead.h, among them).
#  2. Int4 TTFT at 2,000 and 7,000 tokens with the dequantization ahead and without
#     (SLUICE_CUDA_GPTQ_DEQUANT_AHEAD; issue 17: no worse than bf16's 44.6 ms at 2,000).
#  3. Int4 at 32 and 1 streams: which dependent launch costs 18 % at 32 streams (default /
#     SLUICE_CUDA_DECODE_EARLY_LAUNCH=0 / SLUICE_CUDA_PDL=0).
#  4. The GPTQ products at one row, 4 and 8 bits, against this card's copy bandwidth.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests.txt 2>&1
echo "1. tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]" $R/tests.txt | head -12
timeout 40 $B/gptq_product_bench 1 > $R/bench4.txt 2>&1; grep -E "^(q|o |gate|down)|bandwidth" $R/bench4.txt
timeout 40 $B/gptq_product_bench --bits 8 1 > $R/bench8.txt 2>&1; grep -E "^(q|o |gate|down)" $R/bench8.txt
echo "2. int4 model: $(wait_model $m4) $(el)"
for a in 1 0; do
  SLUICE_CUDA_GPTQ_DEQUANT_AHEAD=$a SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" KEEP_MODEL=1 \
    gq int4,long | grep -E "sluice |Failed" | sed "s/^/ahead=$a /"
  mkdir -p $R/ahead$a; mv $R/int4/long_* $R/ahead$a/ 2>/dev/null
done
echo "3. PDL $(el)"
AB_CONCURRENCY="32 1" AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,early,late0:SLUICE_CUDA_DECODE_EARLY_LAUNCH=0,nopdl:SLUICE_CUDA_PDL=0 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

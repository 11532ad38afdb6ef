#!/usr/bin/env bash
# Session 17, third call (bench/RESULTS.md "Session 17"): the defaults chosen from the first
# two calls (the wgmma prefill's sequential schedule; the Hopper GPTQ GEMM from 33 rows to 256),
# tested and timed: the attention, GPTQ, plan and model tests; the GPTQ products at 33-64 rows
# (Hopper GEMM / mma.sync GEMM); bf16 TTFT against transformers at 1,800-32,000 tokens and at
# 2,000 for Int4 against bf16; Int4 at 64 streams A/B of the two GEMMs; Int4 at 32 streams with
# dependent launches off, the pipelined decode attention against the previous kernel.
source bench/gpu_call_setup.sh
write_models_bg
timeout 200 $T $B/cuda_kernels_test --gtest_filter='*Matmul*:CudaGptq*:*Attention*:CudaModel*' > $R/tests.txt 2>&1
echo "1. tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]" $R/tests.txt | head -12
for g in 1 0; do
  SLUICE_CUDA_GPTQ_GEMM90=$g timeout 40 $B/gptq_product_bench 33 48 64 > $R/gemm_small_g$g.txt 2>&1
  echo "2. GPTQ products, GEMM90=$g $(el)"; grep -E "^(q|o |gate|down)" $R/gemm_small_g$g.txt
done
echo "3. bf16 model: $(wait_model $m) $(el)"
LONG_STREAMS=0 LONG_LENGTHS="1800 2000 7000 20000 32000" g7 long | grep -E "transformers|sluice |Failed"
rm -rf $W/repo
echo "4. int4 model: $(wait_model $m4) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS=2000 KEEP_MODEL=1 gq int4,long | grep -E "sluice |Failed"
AB_CONCURRENCY=64 AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,g90:SLUICE_CUDA_GPTQ_GEMM90=1,mma:SLUICE_CUDA_GPTQ_GEMM90=0 |
  grep -E "c=|Failed|ab_"
SLUICE_CUDA_PDL=0 AB_CONCURRENCY=32 AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,pipe,old:SLUICE_CUDA_DECODE_PIPELINE=0 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

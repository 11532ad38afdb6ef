#!/usr/bin/env bash
# One GPU call for the Hopper GPTQ GEMM's block shapes (gptq_gemm90_plan.h, issue 17): the
# GEMM tests (every shape forced around its tile boundaries: CudaGptqTest.Gemm90*) under each
# SLUICE_CUDA_GPTQ_GEMM90_SHAPES, then the product bench with --variants (every shape timed
# in one run, after the knobs' choice) at 33 to 256 rows for 4 bits in both k orders and for
# 8 bits, then SHAPES 0 / 1 / 2 against each other on the four Qwen2-7B products, then Int4 end
# to end at 64 and 256 streams with SHAPES 0 and 1.
source bench/gpu_call_setup.sh
write_models_bg
F="--gtest_filter=CudaGptqTest.*"
for v in "" SLUICE_CUDA_GPTQ_GEMM90_SHAPES=1 SLUICE_CUDA_GPTQ_GEMM90_SHAPES=2; do
  log=$R/tests_${v:-default}.txt
  env $v timeout 150 $T $B/cuda_kernels_test "$F" > $log 2>&1
  echo "tests ${v:-default}: rc=$? $(el)"; grep -E "FAILED|result|Hopper GEMM" $log | sort -u | head -12
done
P=$B/gptq_product_bench
ROWS="33 48 64 65 96 128 160 192 256"
for args in "--order 2" "--order 1" "--bits 8 --order 2"; do
  echo "== $args --variants"
  timeout 90 $P $args --variants --iters 9 $ROWS 2>&1 | tee "$R/bench_variants${args// /}.txt"
done
for shapes in 0 1 2; do
  echo "== 4 bits, SHAPES=$shapes"
  SLUICE_CUDA_GPTQ_GEMM90_SHAPES=$shapes timeout 60 $P $ROWS 2>&1 | tee $R/bench_shapes$shapes.txt
done
echo "benches $(el)"
echo "int4 model: $(wait_model $m4) $(el)"
MAX_NUM_SEQS=256 AB_CONCURRENCY="64 256" AB_ROUNDS=1 KEEP_MODEL=1 \
  gq int4,ab,s0:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=0,s1:SLUICE_CUDA_GPTQ_GEMM90_SHAPES=1 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

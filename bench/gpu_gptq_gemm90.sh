#!/usr/bin/env bash
# One GPU call for the GPTQ GEMM of Hopper (gptq_gemm90.cu): its tests with the wave model's
# tile choice and with each tile height forced, the mma.sync GEMM's tests at every row count
# (SLUICE_CUDA_GPTQ_GEMM90=0), the product bench at 64 to 512 rows against the dequantization +
# cuBLASLt path (4 bits in both k orders, 8 bits, and the tile heights A/B), then Int4 end to
# end with the Hopper GEMM on and off.
source bench/gpu_call_setup.sh
write_models_bg
F="--gtest_filter=CudaGptqTest.*"
for v in "" SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS=128 SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS=256 \
  SLUICE_CUDA_GPTQ_GEMM90=0; do
  log=$R/tests_${v:-default}.txt
  env $v timeout 150 $T $B/cuda_kernels_test "$F" > $log 2>&1
  echo "tests ${v:-default}: rc=$? $(el)"; grep -E "FAILED|result|Hopper GEMM" $log | sort -u | head -12
done
P=$B/gptq_product_bench
for args in "--order 2" "--order 1" "--bits 8 --order 2" "--bits 8 --group 32 --order 1"; do
  echo "== $args"; timeout 60 $P $args 64 65 100 128 200 256 384 512 2>&1 | tee "$R/bench_${args// /}.txt"
done
for tile in 128 256; do
  echo "== 4 bits, tile rows $tile"
  SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS=$tile timeout 60 $P 128 256 512 2>&1 | tee $R/bench_tile$tile.txt
done
echo "benches $(el)"
echo "int4 model: $(wait_model $m4) $(el)"
# 128 and 256 streams (MAX_NUM_SEQS 256): the Hopper GEMM against the dequantization +
# cuBLASLt it replaces past 64 rows (GEMM90=0 also takes the GEMM's rows back to 64).
MAX_NUM_SEQS=256 AB_CONCURRENCY="128 256" AB_ROUNDS=1 KEEP_MODEL=1 \
  gq int4,ab,g90:SLUICE_CUDA_GPTQ_GEMM90=1,deq:SLUICE_CUDA_GPTQ_GEMM90=0 | grep -E "c=|Failed|ab_"
echo "done $(el)"

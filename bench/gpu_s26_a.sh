#!/usr/bin/env bash
# Session 26, call A. LIMIT=580 on an H100.
# 1. The Hopper GEMM's 4-bit dequantization on bf16 pairs (three bf16 FMAs a pair, exact:
#    gptq_gemm90_parts.cuh's Convert) against the fp32 route of the build before it
#    (.gpu/base.txz: gptq_product_bench and the device module of dedd954): the GEMM tests
#    first (bit for bit between paths, float64 references), then the products alternated.
# 2. The Hopper GEMM under 33 rows (SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS, new) against the
#    small-batch product, where Int8 at 32 streams loses to bf16 (gate|up 8 bits at 32 rows:
#    103 us for 136 MB, 1.3 TB/s); its tests with the GEMM from 9 rows.
# 3. Session 25's unrun check: the whole CUDA suite after the upload changes.
# 4. End to end: Int8 at 32 streams with the small-batch product to 32 / 16 / 8 rows; Int4's
#    2,000-token TTFT with the new dequantization, the GEMM to 1,024 / 2,048 rows; bf16.
source bench/gpu_call_setup.sh
mkdir -p /tmp/base && tar xJf .gpu/base.txz -C /tmp/base
base() { LD_LIBRARY_PATH=$G/lib /tmp/base/bin/real/gptq_product_bench "$@"; }
write_models_bg int4 int8 bf16
gpu_tests 'CudaGptqTest.Gemm*:CudaGptqTest.Linear*' 60
for r in 1 2; do
  echo "1. base, 4 bits"; base --bits 4 --iters 9 64 256 1024 | grep -vE "^swiglu"
  echo "1. new, 4 bits"; $B/gptq_product_bench --bits 4 --iters 9 64 256 1024 | grep -vE "^swiglu"
done
echo "1. base / new, 4 bits, 2,048 rows"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 base --bits 4 --iters 5 2048 | grep -vE "^swiglu"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 $B/gptq_product_bench --bits 4 --iters 5 2048 |
  grep -vE "^swiglu"
for bits in 8 4; do
  echo "2. $bits bits, default"
  $B/gptq_product_bench --bits $bits --iters 9 16 24 32 | grep -vE "^swiglu"
  echo "2. $bits bits, the Hopper GEMM from 9 rows"
  SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=8 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=9 \
    $B/gptq_product_bench --bits $bits --iters 9 --variants 16 24 32 | grep -vE "^swiglu"
done
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=8 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=9 \
  gpu_tests 'CudaGptqTest.Gemm*:CudaGptqTest.Linear*:CudaGptqModelTest.*' 90
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "3. all CUDA tests rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED" $R/tests_all.txt | head -12
echo "4. int4 model: $(wait_model $m4) $(el)"
for mr in 1024 2048; do
  echo "4. int4 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 \
    gq int4,long | grep -E "tokens|Failed"
done
echo "4. int8 model: $(wait_model $m8) $(el)"
for mr in 32 16 32 16; do
  echo "4. int8 32 streams, MMA_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$mr SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=$((mr + 1)) streamsq int8 32
done
echo "4. bf16 model: $(wait_model $m) $(el)"
streams7 32
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"
echo "done $(el)"

#!/usr/bin/env bash
# Session 23's second call: with the producing warpgroup on by default (SLUICE_CUDA_GPTQ_GEMM90_TMA
# =2; call A: 22-25 % faster at 256 rows), the last wave's column blocks cut in input slices
# (SLUICE_CUDA_GPTQ_GEMM90_TAIL=1, written this session), how far up the rows the Hopper GPTQ
# GEMM should run before dequantization into bf16 + cuBLASLt takes over
# (SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS, 256 so far), and why the prefill's q and o ran at 414
# TFLOP/s (session 22's profile).
# 1. The GEMM tests (the tail's launches forced at every copy path among them).
# 2. The products at 4 and 8 bits from 16 to 2,048 rows, GEMM against dequant + cuBLASLt
#    (the bench's "x alt"); with TAIL=1 at 128 and 256 rows; the block shapes at 128 rows.
# 3. cuBLASLt's prefill products one by one (--unfused) and fused, at 2,000 and 7,000 rows.
# 4. TTFT at 2,000 and 7,000 tokens: bf16, Int4 with MAX_ROWS 256 and 4096.
# 5. 256 streams: bf16; Int8 with TAIL 0 / 1 and MAX_ROWS 1024 with TAIL 1.
# 6. Int8 at 32 streams with the small-batch kernel to 32 rows (default) and to 16 (the GEMM
#    past them).
# LIMIT=440 on an H100.
source bench/gpu_call_setup.sh
write_models_bg bf16 int4 int8
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm*' 160 || echo "tests failed: TAIL timings meaningless"
rows="16 32 64 128 192 256 384 512 1024 2048"
for bits in 4 8; do
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=4096 \
    timeout 90 $B/gptq_product_bench --bits $bits --iters 7 $rows > $R/products_$bits.txt 2>&1
  echo "2. $bits bits rc=$? $(el)"
  tail -n +2 $R/products_$bits.txt | awk '{print $1, $2, $3, $5, $8, $9, $10, $11}'
  SLUICE_CUDA_GPTQ_GEMM90_TAIL=1 timeout 60 $B/gptq_product_bench --bits $bits --iters 9 128 256 \
    > $R/products_tail_$bits.txt 2>&1
  echo "2. $bits bits, TAIL=1 rc=$? $(el)"
  tail -n +3 $R/products_tail_$bits.txt | awk '{print $1, $2, $3, $5, $8}'
done
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=16 timeout 60 $B/gptq_product_bench --bits 8 --iters 9 24 32 \
  > $R/products_8_mma16.txt 2>&1
echo "2. 8 bits, MMA_MAX_ROWS=16 rc=$? $(el)"
tail -n +3 $R/products_8_mma16.txt | awk '{print $1, $2, $3, $5, $10}'
timeout 60 $B/gptq_product_bench --variants --iters 7 128 > $R/variants_128.txt 2>&1
echo "2b. variants at 128 rows rc=$? $(el)"; grep -E "^(gate|down)" $R/variants_128.txt | head -20
echo "3. cuBLASLt one by one and fused $(el)"
timeout 60 $B/matmul_algo_bench --unfused 2000 7000 2>&1 | tee $R/matmul_unfused.txt | tail -18
timeout 60 $B/matmul_algo_bench 2000 7000 2>&1 | tee $R/matmul_fused.txt | tail -10
echo "4. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" g7 long | grep -E "tokens|Failed"
echo "4b. int4 model: $(wait_model $m4) $(el)"
for mr in 256 4096; do
  echo "int4 MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" \
    KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"
done
echo "5. 256 streams $(el)"
streams7 256
echo "5b. int8 model: $(wait_model $m8) $(el)"
for v in "0 256" "1 256" "1 1024"; do
  set -- $v; echo "int8 TAIL=$1 MAX_ROWS=$2"
  SLUICE_CUDA_GPTQ_GEMM90_TAIL=$1 SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$2 streamsq int8 256
done
echo "6. int8 at 32 streams, MMA_MAX_ROWS 32 / 16 $(el)"
for mm in 32 16; do SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$mm streamsq int8 32; done
echo "done $(el)"

#!/usr/bin/env bash
# Session 23's first call (written in session 22 after its device time was spent): the Hopper GPTQ
# GEMM's stages filled from a producing warpgroup (SLUICE_CUDA_GPTQ_GEMM90_TMA=2: TMA copies
# issued by a fifth warpgroup that gives its registers to the two computing ones, every stage
# ahead; 8-tile blocks of 128 rows and more), unrun. Session 22's call A measured TMA issued by
# computing warp 0 (=1) 3-39 % slower than cp.async (=0, the default). Needs
# .gpu/base_gptq_product_bench: /work/notes/base_gptq_product_bench_937cf00 (cp.async, 5 stages);
# optionally .gpu/deep_gptq_product_bench: the bench built with kMaxStages = 8
# (gptq_gemm90_parts.cuh), stripped, for phase 5. LIMIT=300 on an H100.
# 1. The GEMMs' tests: every shape with each copy path, bit-identical to cp.async's.
# 2. The products at 4 and 8 bits, 128 / 256 rows: the bench before / =0 / =1 / =2.
# 3. cuBLASLt's bf16 prefill products at 7,000 rows timed alone (session 22's profile: q and o
#    at 414 TFLOP/s in the server, gate and up at 709).
# 4. Int8 and Int4 at 256 streams with =0 and =2 (session 22: 13,208.7 / 14,065.8; bf16
#    15,121.8 in the same call).
# 5. With the deep bench: 8 stages against 5, cp.async and =2 (whose producer runs every stage
#    ahead), 4 and 8 bits.
source bench/gpu_call_setup.sh
write_models_bg int8 int4
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm*' 160 || { echo "tests failed: no timing"; exit 0; }
chmod +x .gpu/*_gptq_product_bench
# products PHASE BITS NAME BIN TMA: one bench run, a line of us a product.
products() {
  SLUICE_CUDA_GPTQ_GEMM90_TMA=$5 timeout 60 $4 --bits $2 --iters 9 128 256 \
    > $R/products_$2_$3.txt 2>&1
  echo "$1. $2 bits, $3: rc=$? $(el)"
  grep -E "^(q\|k\|v|o|gate\|up|down) +(128|256) " $R/products_$2_$3.txt |
    awk '{printf "%s %s %s | ", $1, $2, $5} END {print ""}'
}
for bits in 4 8; do
  products 2 $bits base .gpu/base_gptq_product_bench 0
  for tma in 0 1 2; do products 2 $bits tma$tma $B/gptq_product_bench $tma; done
done
echo "3. cuBLASLt's bf16 prefill products at 7,000 rows $(el)"
timeout 60 $B/matmul_algo_bench 7000 2>&1 | tee $R/matmul_algo.txt | tail -12
echo "4. int8 model: $(wait_model $m8) $(el)"
for tma in 0 2; do SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma streamsq int8 256; done
echo "4b. int4 model: $(wait_model $m4) $(el)"
for tma in 0 2; do SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma streamsq int4 256; done
if [ -x .gpu/deep_gptq_product_bench ]; then
  for bits in 4 8; do
    for tma in 0 2; do products 5 $bits deep$tma .gpu/deep_gptq_product_bench $tma; done
  done
fi
echo "done $(el)"

#!/usr/bin/env bash
# Session 22's last try (the device's time nearly spent): call C (bench/gpu_s22_c.sh) cut to
# what fits LIMIT=150: the GEMMs' tests, one round of the products at 4 and 8 bits (5 stages /
# deeper / deeper with TMA), and cuBLASLt's bf16 prefill products at 7,000 rows timed alone.
# Unrun: "too little device time left to start". Binaries and base bench as gpu_s22_c.sh says.
source bench/gpu_call_setup.sh
F='CudaGptqTest.Gemm*'
timeout 100 $T $B/cuda_kernels_test --gtest_filter=$F > $R/tests_gptq.txt 2>&1
echo "1. GPTQ tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_gptq.txt | head -12
echo "2. cuBLASLt's bf16 prefill products at 7,000 rows, each alone $(el)"
timeout 40 $B/matmul_algo_bench 7000 2>&1 | tee $R/matmul_algo.txt | tail -12
pass $R/tests_gptq.txt || { echo "tests failed: no timing"; exit 0; }
chmod +x .gpu/base_gptq_product_bench
for bits in 4 8; do
  for v in base deep tma; do
    bin=$B/gptq_product_bench; [ $v = base ] && bin=.gpu/base_gptq_product_bench
    tma=0; [ $v = tma ] && tma=1
    SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma timeout 30 $bin --bits $bits --iters 9 64 128 256 \
      > $R/products_${bits}_${v}.txt 2>&1
    echo "3. $bits bits $v rc=$? $(el)"
    grep -E "^(q\|k\|v|o|gate\|up|down) +(64|128|256) " $R/products_${bits}_${v}.txt |
      awk '{printf "%s %s %s | ", $1, $2, $5} END {print ""}'
  done
done
echo "done $(el)"

#!/usr/bin/env bash
# Session 22's third call: the Hopper GPTQ GEMM's pipeline as deep as the shared memory holds
# (up to 8 stages; 5 before) after call A found the copy engine's stages (TMA) slower than
# cp.async at 64 to 256 rows, latency being the suspect. Unrun (the session's device time went
# to failed starts): build with kMaxStages = 8 in gptq_gemm90.cu (one line; 5 is committed) and
# pack; needs .gpu/base_gptq_product_bench (the bench at 937cf00, 5 stages, stripped; kept as
# /work/notes/base_gptq_product_bench_937cf00). LIMIT=300 on an H100.
# 1. The GEMMs' tests (both copy paths, every shape) and the model test.
# 2. The products, 5 stages / deeper / deeper with TMA, two rounds, 4 and 8 bits.
# 2b. cuBLASLt's bf16 prefill products at 7,000 rows timed alone (call A's profile: q and o
#    at 414 TFLOP/s in the server, gate and up at 709).
# 3. Int8 and Int4 at 256 streams (call B: 13,208.7 / 14,065.8; bf16 15,121.8).
source bench/gpu_call_setup.sh
write_models_bg int8 int4
F='CudaGptqTest.Gemm*:CudaGptqModelTest.*'
timeout 160 $T $B/cuda_kernels_test --gtest_filter=$F > $R/tests_gptq.txt 2>&1
echo "1. GPTQ tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_gptq.txt | head -12
pass $R/tests_gptq.txt || { echo "tests failed: no timing"; exit 0; }
chmod +x .gpu/base_gptq_product_bench
for bits in 4 8; do
  for round in 1 2; do
    for v in base deep tma; do
      bin=$B/gptq_product_bench; [ $v = base ] && bin=.gpu/base_gptq_product_bench
      tma=0; [ $v = tma ] && tma=1
      SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma timeout 60 $bin --bits $bits --iters 9 64 128 256 \
        > $R/products_${bits}_${v}_$round.txt 2>&1
      echo "2. $bits bits $v round $round rc=$? $(el)"
      grep -E "^(q\|k\|v|o|gate\|up|down) +(64|128|256) " $R/products_${bits}_${v}_$round.txt |
        awk '{printf "%s %s %s | ", $1, $2, $5} END {print ""}'
    done
  done
done
echo "2b. cuBLASLt's bf16 prefill products at 7,000 rows, each alone $(el)"
timeout 60 $B/matmul_algo_bench 7000 2>&1 | tee $R/matmul_algo.txt | tail -12
echo "3. int8 model: $(wait_model $m8) $(el)"
KEEP_MODEL=1 MAX_NUM_SEQS=256 CONCURRENCY="256" gq int8,sluice | grep -E "c=|Failed"
echo "3b. int4 model: $(wait_model $m4) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="256" gq int4,sluice | grep -E "c=|Failed"
echo "done $(el)"

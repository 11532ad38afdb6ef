#!/usr/bin/env bash
# Session 23's third call: the new defaults together (the producing warpgroup, the last wave's
# column blocks in slices, 128 x 128 blocks at 65-128 rows, the Hopper GEMM to 1,024 rows and
# 192-row blocks where they pad less past 256): the GPTQ tests, the products, and issue 17's
# 32- and 256-stream figures, bf16 in the same call. LIMIT=170 on an H100.
source bench/gpu_call_setup.sh
write_models_bg bf16 int8 int4
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm*:CudaGptqModelTest.*' 200 || { echo "tests failed: no timing"; exit 0; }
for bits in 4; do
  timeout 30 $B/gptq_product_bench --bits $bits --iters 5 128 256 384 1024 \
    > $R/products_$bits.txt 2>&1
  echo "2. $bits bits rc=$? $(el)"
  tail -n +3 $R/products_$bits.txt | awk '$3 != "small" {print $1, $2, $3, $5, $8, $11}'
done
echo "3. bf16 model: $(wait_model $m) $(el)"
streams7 "32 256"
echo "4. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 256"
echo "5. int4 model: $(wait_model $m4) $(el)"
streamsq int4 256
echo "done $(el)"

#!/usr/bin/env bash
# Session 24's second call: issue 17's many-stream table with the small-batch product's new
# default (two column tiles a warp by gptq_mma_plan.h's rule at 9-32 rows; 8-bit pairs by byte
# permutes), bf16 in the same call. LIMIT=560 on an H100.
# 1. Every GPTQ GPU test with the default.
# 2. The products at 16 and 32 rows, 4 and 8 bits (which products took two tiles).
# 3. Output tok/s at 32, 64 and 256 streams (128 in / 128 out): Int8, Int4, bf16.
source bench/gpu_call_setup.sh
write_models_bg int8 int4 bf16
echo "1. GPTQ tests"
gpu_tests 'CudaGptq*' 200 || { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
for bits in 4 8; do
  timeout 40 $B/gptq_product_bench --bits $bits --iters 9 16 32 > $R/p_$bits.txt 2>&1
  echo "2. $bits bits rc=$? $(el)"
  grep -E "^(q\|k\|v|o|gate\|up|down) +(16|32) " $R/p_$bits.txt |
    awk '{printf "%s %s %s | ", $1, $2, $5} END {print ""}'
done
echo "3. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 64 256"
rm -rf $m8
echo "3. int4 model: $(wait_model $m4) $(el)"
streamsq int4 "32 64 256"
echo "3. bf16 model: $(wait_model $m) $(el)"
streams7 "32 64 256"
echo "done $(el)"

#!/usr/bin/env bash
# For the next GPU call (written at session 23's end, unrun): issue 17's figures with session
# 23's GPTQ defaults (the producing warpgroup, the last wave in slices, 128 x 128 blocks at
# 65-128 rows, the Hopper GEMM to 1,024 rows), the parts that call C had no time for, and batch 1
# (the H200 targets, Int4 >= 500 tok/s, Int8 >= 350; on an H100 for the record).
# 1. The GEMM tests.
# 2. Every block shape with the tail at 64, 192 and 512 rows (--variants), 4 and 8 bits: whether
#    the plan's choice is still the fastest with slices in the last wave.
# 3. TTFT at 2,000 and 7,000 tokens, bf16 and Int4 (session 23: 43.2 / 165.6 and 48.2 / 154.2).
# 4. One stream, Int4 and Int8 (128 in / 128 out), bf16 in the same call.
# LIMIT=330 on an H100.
source bench/gpu_call_setup.sh
write_models_bg bf16 int4 int8
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm*:CudaGptqModelTest.*' 200 || { echo "tests failed: no timing"; exit 0; }
for bits in 4 8; do
  timeout 60 $B/gptq_product_bench --bits $bits --variants --iters 7 64 192 512 \
    > $R/variants_$bits.txt 2>&1
  echo "2. $bits bits rc=$? $(el)"
  grep -E "^(gate|down)" $R/variants_$bits.txt | awk '{print $1, $2, $3, $5}' | head -40
done
echo "3. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" g7 long | grep -E "tokens|Failed"
CONCURRENCY="1" g7 sluice | grep -E "c=|Failed"
echo "4. int4 model: $(wait_model $m4) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"
KEEP_MODEL=1 CONCURRENCY="1" gq int4,sluice | grep -E "c=|Failed|bytes read"
echo "5. int8 model: $(wait_model $m8) $(el)"
KEEP_MODEL=1 CONCURRENCY="1" gq int8,sluice | grep -E "c=|Failed|bytes read"
echo "done $(el)"

#!/usr/bin/env bash
# Session 17, call 1 (bench/RESULTS.md "Session 17"): SLUICE_CUDA_DECODE_LATE_PDL=1's decode
# tests and its Int4 A/B at 32 streams against the default pipelined kernel and the previous
# one; then issue 17's many-stream comparison on one card: bf16 against Int4 and Int8 at 32, 64
# and 256 streams (128 in / 128 out); the shared-prefix phase with cuBLASLt plans by row bucket
# and their warm-up at load; the GPTQ products alone at 1 and 8 rows.
source bench/gpu_call_setup.sh
write_models_bg
timeout 100 $T $B/cuda_kernels_test --gtest_filter="*Matmul*:CudaGptqModelTest.*:CudaModel*" > $R/tests_plans.txt 2>&1
echo "0. plan tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_plans.txt | head -6
SLUICE_CUDA_DECODE_LATE_PDL=1 timeout 60 $T $B/cuda_kernels_test --gtest_filter='DecodeAttentionTest.*' > $R/tests_decode_late.txt 2>&1
echo "1. decode tests, late dependents rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_decode_late.txt | head -4
echo "2. bf16 model: $(wait_model $m) $(el)"
CONCURRENCY="32 64 256" MAX_NUM_SEQS=256 g7 sluice prefix | grep -E "c=|Failed|prefix|ready in"
grep -h "ready in" $R/sluice*.log | sed "s/.*ready in/bf16 ready in/"
rm -rf $W/repo
echo "3. int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY=32 AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,pipe:SLUICE_CUDA_DECODE_PIPELINE=1,late:SLUICE_CUDA_DECODE_LATE_PDL=1,old:SLUICE_CUDA_DECODE_PIPELINE=0 |
  grep -E "c=|Failed|ab_"
CONCURRENCY="64 256" MAX_NUM_SEQS=256 gq int4,sluice | grep -E "c=|Failed"
rm -rf $W/int4
CONCURRENCY="1 32 64 256" MAX_NUM_SEQS=256 gq int8,sluice | grep -E "c=|Failed|bytes read"
# The products alone on this card, against its copy bandwidth (issue 17's batch-1 question on
# an H200: do the products reach its bandwidth as they do an H100's?).
[ $(left) -gt 25 ] && timeout $(( $(left) - 5 )) $B/gptq_product_bench 1 8 > $R/bench4.txt 2>&1
[ $(left) -gt 25 ] && timeout $(( $(left) - 5 )) $B/gptq_product_bench --bits 8 1 > $R/bench8.txt 2>&1
echo "done $(el)"

#!/usr/bin/env bash
# Session 16, call 1 (bench/RESULTS.md): the GPTQ tensor-core product's load order against the
# step order (gptq_product_bench alternating, the GPTQ tests in both orders, Int4 end to end
# A/B at one stream and 32 streams), and the prefill attention forms never timed
# (SLUICE_CUDA_PREFILL_MTILES x SLUICE_CUDA_PREFILL_WARPS).
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
P=$B/gptq_product_bench
for round in 1 2; do
  for ord in 2 1; do
    echo "== 4-bit order $ord round $round"
    timeout 60 $P --order $ord 1 4 8 16 32 2>&1 | tee $R/bench4_o${ord}_r$round.txt
  done
done
for ord in 2 1; do
  echo "== 8-bit order $ord"; timeout 60 $P --bits 8 --order $ord 1 8 32 2>&1 | tee $R/bench8_o$ord.txt
done
echo "1. benches $(el)"
timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "2. gptq tests (load order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq.txt | head -8
SLUICE_CUDA_GPTQ_LOAD_ORDER=0 timeout 150 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_step.txt 2>&1
echo "3. gptq tests (step order) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_step.txt | head -8
for v in "1 4" "2 4" "3 4" "1 8" "2 8"; do
  set -- $v
  echo "== prefill mtiles=$1 warps=$2"
  SLUICE_CUDA_PREFILL_MTILES=$1 SLUICE_CUDA_PREFILL_WARPS=$2 timeout 60 $B/prefill_attention_bench \
    --iters 5 1800 7000 20000 2>&1 | tee $R/prefill_m$1_w$2.txt | tail -4
done
echo "4. prefill forms $(el)"
echo "5. int4 model: $(wait_model $m4) $(el)"
AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,load:SLUICE_CUDA_GPTQ_LOAD_ORDER=1,step:SLUICE_CUDA_GPTQ_LOAD_ORDER=0 |
  grep -E "c=|Failed|bytes read|ab_"
KEEP_MODEL=1 CONCURRENCY="32" gq int4,sluice | grep -E "c=|Failed|wrote|unload"
echo "done $(el)"

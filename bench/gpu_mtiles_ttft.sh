#!/usr/bin/env bash
# Session 16, call 2 (bench/RESULTS.md): the tensor-core prefill attention with two m-tiles a
# warp (SLUICE_CUDA_PREFILL_MTILES=2): every attention test in that form, TTFT against
# transformers and the shared-prefix phase through the server; GPTQ Int4 with the output
# projections' partials (SLUICE_CUDA_GPTQ_PARTIALS=1) A/B at one stream after the load order;
# GPTQ Int8 at 1 and 32 streams.
source bench/gpu_call_setup.sh
m8=$W/int8/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 &&
    touch $m8/.complete ) &
writer=$!
SLUICE_CUDA_PREFILL_MTILES=2 timeout 200 $T $B/cuda_kernels_test --gtest_filter='*Attention*' > $R/tests_attention_m2.txt 2>&1
echo "1. attention tests, mtiles 2: rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|tests ran" $R/tests_attention_m2.txt | head -8
echo "2. bf16 model: $(wait_model $m) $(el)"
export SLUICE_CUDA_PREFILL_MTILES=2
g7 long prefix | grep -E "transformers|sluice"
unset SLUICE_CUDA_PREFILL_MTILES
rm -rf $W/repo
echo "3. int4 model: $(wait_model $m4) $(el)"
AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,base,partials:SLUICE_CUDA_GPTQ_PARTIALS=1 | grep -E "c=|Failed|ab_"
rm -rf $W/int4
while [ ! -f $m8/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done; tail -1 $R/int8_write.txt
CONCURRENCY="1 32" gq int8,sluice | grep -E "c=|Failed|bytes read|unload"
echo "done $(el)"

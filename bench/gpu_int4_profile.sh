#!/usr/bin/env bash
# Session 16, call 3 (bench/RESULTS.md): where the GPTQ Int4 decode step goes after the load
# order (SLUICE_CUDA_PROFILE=1: eager per-op GPU times, then graphs' GPU time against the
# step-to-step time), and the GPTQ products alone on this call's card.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
timeout 60 $B/gptq_product_bench 1 8 16 32 2>&1 | tee $R/bench4.txt
timeout 60 $B/gptq_product_bench --bits 8 1 32 2>&1 | tee $R/bench8.txt
timeout 60 $B/prefill_attention_bench --decode --batch 1 --iters 20 128 512 2048 2>&1 | tee $R/decode_b1.txt
echo "1. benches $(el)"
echo "2. int4 model: $(wait_model $m4) $(el)"
gq int4,profile | grep -vE "^\s*$" | head -60
echo "done $(el)"

#!/usr/bin/env bash
# Session 19, call C (bench/RESULTS.md "Session 19"), what the device time left allowed:
# 1. bf16 long prompts with 16,384 tokens for prefill-only steps and 4,096 for steps that carry
#    decodes (max_num_batched_tokens_with_decodes): TTFT at 7,000 and 32,000 tokens, and 8
#    streams of 20,000-token prompts (p99 ITL).
# 2. Int4 at 1 and 32 streams: the default against the small-batch GPTQ kernels placed after
#    their predecessor ends past 16 rows (SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16).
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete ) &
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
wait_for() { while [ ! -f $1/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done; }
wait_for $m; echo "1. bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
MAX_BATCHED_TOKENS=16384 MAX_BATCHED_TOKENS_WITH_DECODES=4096 SKIP_HF=1 LONG_LENGTHS="7000 32000" g7 long |
  grep -E "sluice |Failed" | sed "s/^/16384|4096: /"
rm -rf $W/repo
wait_for $m4; echo "2. int4 model: $(tail -1 $R/int4_write.txt) $(el)"
AB_CONCURRENCY="1 32" AB_ROUNDS=1 gq int4,ab,base,mma16:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16 | grep -E "c=|Failed"
echo "done $(el)"

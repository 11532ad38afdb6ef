#!/usr/bin/env bash
# For the next GPU call (written in session 19, not run; bench/RESULTS.md "Session 19" and "Not
# measured yet"): what sessions 18 and 19's device time did not reach, in one call, the most
# wanted first (LIMIT=560 takes all of it on an H100).
#  1. Int4 at 1 and 32 streams: which dependent launch costs Int4 its 32-stream throughput
#     (session 19 call A: 3,564 tok/s with them, 4,242 with SLUICE_CUDA_PDL=0): the default,
#     the small-batch GPTQ kernels placed after their predecessor ends past 16 rows and at
#     every row count (SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16 / 0).
#  2. bf16 long prompts: TTFT at 7,000, 20,000 and 32,000 tokens with 4,096-token steps
#     (transformers' SDPA forward in the same run), then 16,384-token prefill-only steps with
#     4,096 for steps that carry decodes (max_num_batched_tokens_with_decodes), with 8 streams
#     of 20,000-token prompts under it (issue 18: p99 ITL <= 150 ms); bf16 at 32 streams with
#     and without dependent launches; the shared 4,000-token prefix (exact-row algorithms).
#  3. Int8 at 1, 32, 64 and 256 streams; the GPTQ products alone at one row (issue 17's batch-1
#     figures are an H200's: say which card this is).
source bench/gpu_call_setup.sh
m8=$W/int8/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m4/.complete
  python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 &&
    touch $m8/.complete ) &
writer=$!
wait_for() { while [ ! -f $1/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done; }
wait_for $m4; echo "1. int4 model: $(tail -1 $R/int4_write.txt) $(el)"
AB_CONCURRENCY="1 32" AB_ROUNDS=1 \
  gq int4,ab,base,mma16:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16,mma0:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=0 |
  grep -E "c=|Failed"
wait_for $m; echo "2. bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
LONG_STREAMS=0 LONG_LENGTHS="7000 20000 32000" g7 long | grep -E "transformers|sluice |Failed" |
  sed "s/^/4096: /"
mkdir -p $R/b4096; mv $R/long_* $R/sluice_long.log $R/b4096/ 2>/dev/null
MAX_BATCHED_TOKENS=16384 MAX_BATCHED_TOKENS_WITH_DECODES=4096 SKIP_HF=1 \
  LONG_LENGTHS="7000 20000 32000" g7 long | grep -E "sluice |Failed" | sed "s/^/16384|4096: /"
AB_CONCURRENCY=32 AB_ROUNDS=1 g7 ab base nopdl:SLUICE_CUDA_PDL=0 | grep -E "c=|Failed"
g7 prefix | grep -E "sluice prefix|prefix_cache"
rm -rf $W/repo
wait_for $m8; echo "3. int8 model: $(tail -1 $R/int8_write.txt) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="1 32 64 256" gq int8,sluice | grep -E "c=|Failed|bytes read"
timeout 40 $B/gptq_product_bench 1 > $R/bench4.txt 2>&1; tail -6 $R/bench4.txt
timeout 40 $B/gptq_product_bench --bits 8 1 > $R/bench8.txt 2>&1; tail -6 $R/bench8.txt
echo "done $(el)"

#!/usr/bin/env bash
# Session 19, call B (bench/RESULTS.md "Session 19"): which dependent launches cost Int4 its
# 32-stream throughput (call A: 3,564 tok/s with them, 4,242 without any, bf16 4,303), the
# Int8 stream figures with this session's defaults, and issue 18's many-stream figures rerun
# with the exact-row cuBLASLt algorithms (session 18).
# 1. Int4 at 1 and 32 streams: the default; the small-batch GPTQ kernels placed after their
#    predecessor ends (SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=0, or past 16 rows); no dependent launch
#    at all (SLUICE_CUDA_PDL=0).
# 2. Int8: the same A/B at 32 streams; then 1, 64 and 256 streams.
# 3. bf16: 32 streams with and without dependent launches; the shared 4,000-token prefix
#    (32 warm requests together and one after another); 8 streams of 20,000-token prompts.
source bench/gpu_call_setup.sh
m8=$W/int8/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m4/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 && touch $m8/.complete
  python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete ) &
writer=$!
wait_for() { while [ ! -f $1/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done; }
wait_for $m4; echo "1. int4 model: $(tail -1 $R/int4_write.txt) $(el)"
P="base mma0:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=0 mma16:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16 nopdl:SLUICE_CUDA_PDL=0"
AB_CONCURRENCY="1 32" AB_ROUNDS=1 gq int4,ab,${P// /,} | grep -E "c=|Failed"
wait_for $m8; echo "2. int8 model: $(tail -1 $R/int8_write.txt) $(el)"
AB_CONCURRENCY=32 AB_ROUNDS=1 KEEP_MODEL=1 gq int8,ab,${P// /,} | grep -E "c=|Failed|bytes read"
MAX_NUM_SEQS=256 CONCURRENCY="1 64 256" gq int8,sluice | grep -E "c=|Failed"
wait_for $m; echo "3. bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
AB_CONCURRENCY=32 AB_ROUNDS=1 g7 ab base nopdl:SLUICE_CUDA_PDL=0 | grep -E "c=|Failed"
g7 prefix | grep -E "sluice prefix|prefix_cache"
SKIP_HF=1 LONG_LENGTHS=2000 g7 long | grep -E "sluice |Failed"
echo "done $(el)"

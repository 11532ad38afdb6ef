#!/usr/bin/env bash
# For the next GPU call (written in session 17, not run; bench/RESULTS.md "Session 17"): what
# the session's device time did not reach, in one call.
#  1. Int4 at 32 and 1 streams: which dependent launch costs 18 % at 32 streams (default /
#     SLUICE_CUDA_DECODE_EARLY_LAUNCH=0 / SLUICE_CUDA_PDL=0), with the fused decode merge now
#     from 16 sequences on.
#  2. bf16 one stream: ITL after 512 against 32,000 prompt tokens with this session's kernels
#     (issue 18's <= 1.3x), Sluice only.
#  3. Issue 17's batch-1 figures on whatever card this is (the targets are an H200's): Int4 and
#     Int8 at one stream, and the products alone against this card's copy bandwidth.
source bench/gpu_call_setup.sh
write_models_bg
echo "1. int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY="32 1" AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,early,late0:SLUICE_CUDA_DECODE_EARLY_LAUNCH=0,nopdl:SLUICE_CUDA_PDL=0 |
  grep -E "c=|Failed|ab_"
echo "2. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="512 32000" g7 long | grep -E "sluice |Failed"
rm -rf $W/repo $W/int4
CONCURRENCY=1 gq int8,sluice | grep -E "c=|Failed|bytes read"
timeout 40 $B/gptq_product_bench 1 > $R/bench4.txt 2>&1; tail -6 $R/bench4.txt
timeout 40 $B/gptq_product_bench --bits 8 1 > $R/bench8.txt 2>&1; tail -6 $R/bench8.txt
echo "done $(el)"

#!/usr/bin/env bash
# Session 17, second call (bench/RESULTS.md "Session 17"): issue 17's many-stream comparison on
# one card, with the kernels the first call kept (their knobs as the caller exports them):
# bf16 against Int4 and Int8 at 1, 32, 64 and 256 streams (128 in / 128 out); Int4 at 32 and
# 1 streams A/B: the fused decode attention (merge and rope in the decode kernel) against each
# fusion off, and SLUICE_CUDA_DECODE_LATE_PDL=1.
source bench/gpu_call_setup.sh
write_models_bg
echo "1. bf16 model: $(wait_model $m) $(el)"
CONCURRENCY="1 32 64 256" MAX_NUM_SEQS=256 g7 sluice | grep -E "c=|Failed"
rm -rf $W/repo
echo "2. int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY="32 1" AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,fused,norope:SLUICE_CUDA_DECODE_FUSED_ROPE=0,nocombine:SLUICE_CUDA_DECODE_FUSED_COMBINE=0,late:SLUICE_CUDA_DECODE_LATE_PDL=1 |
  grep -E "c=|Failed|ab_"
CONCURRENCY="64 256" MAX_NUM_SEQS=256 gq int4,sluice | grep -E "c=|Failed"
rm -rf $W/int4
CONCURRENCY="1 32 64 256" MAX_NUM_SEQS=256 gq int8,sluice | grep -E "c=|Failed|bytes read"
echo "done $(el)"

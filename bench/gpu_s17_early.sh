#!/usr/bin/env bash
# Session 17, last call: Int4 at 32 and 1 streams, the pipelined decode attention as a dependent
# launch (the default) against SLUICE_CUDA_DECODE_EARLY_LAUNCH=0 (placed after its predecessor
# ends) and SLUICE_CUDA_PDL=0 (no dependent launches at all), which measured 4,245 against 3,586
# tok/s at 32 streams in the calls before; the fused decode merge now from 16 sequences only.
# Written in session 17, not run: the session's device time ran out.
source bench/gpu_call_setup.sh
python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m4/.complete
echo "int4 model $(el)"
AB_CONCURRENCY="32 1" AB_ROUNDS=1 gq int4,ab,early,late0:SLUICE_CUDA_DECODE_EARLY_LAUNCH=0,nopdl:SLUICE_CUDA_PDL=0 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

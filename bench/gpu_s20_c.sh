#!/usr/bin/env bash
# Session 20, call C (bench/RESULTS.md "Session 20"): the warp-specialized prefill attention
# (schedule 4) as the default, end to end: bf16 TTFT at 7,000 and 32,000 tokens with the long
# phase's 16,384 / 4,096 steps (call A: 166.6 / 1,131.0 ms with schedule 1), then schedule 1
# in the same run if time is left.
source bench/gpu_call_setup.sh
python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1
echo "bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
for s in 4 1; do
  SLUICE_CUDA_PREFILL_WGMMA=$s SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="7000 32000" g7 long |
    grep -E "sluice |Failed" | sed "s/^/sched $s: /"
done
echo "done $(el)"

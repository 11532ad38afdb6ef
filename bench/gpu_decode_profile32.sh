#!/usr/bin/env bash
# Session 16, call 8 (bench/RESULTS.md): Int4 at 32 streams with the pipelined decode
# attention and the previous kernel, with SLUICE_CUDA_PROFILE=1: the graphs' GPU time a step
# against the step-to-step time, to tell whether call 6's extra millisecond is GPU work.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
echo "1. int4 model: $(wait_model $m4) $(el)"
export SLUICE_CUDA_PROFILE=1
AB_CONCURRENCY=32 AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,pipe:SLUICE_CUDA_DECODE_PIPELINE=1,old:SLUICE_CUDA_DECODE_PIPELINE=0 |
  grep -E "c=|Failed|ab_"
for v in pipe old; do echo "== $v"; grep "cuda profile" $R/int4/ab_${v}_1.log | sed 's/.*\] cuda profile/cuda profile/' | grep -E "graph|rows\]:|Attention|Combine|Linear|SwiGlu" | head -30; done
echo "done $(el)"

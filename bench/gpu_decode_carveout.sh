#!/usr/bin/env bash
# Session 16, call 7 (bench/RESULTS.md): why 32 Int4 streams decode ~1 ms a step slower with
# the pipelined decode attention though the kernel alone is 2-3x faster (call 6): A/B at 32
# and at 1 stream of the pipelined kernel with the largest shared-memory carveout (default),
# with the driver's choice (SLUICE_CUDA_DECODE_MAX_SHARED=0, a knob of this call's binaries,
# removed after: no difference), and the previous kernel.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
for b in 1 32; do
  SLUICE_CUDA_DECODE_MAX_SHARED=0 timeout 60 $B/prefill_attention_bench --decode --batch $b --graph --bound 4096 --iters 20 256 4096 2>&1 | tee $R/decode_ms0_b$b.txt | tail -3
done
echo "1. $(el) int4 model: $(wait_model $m4) $(el)"
for c in 32 1; do
  AB_CONCURRENCY=$c AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,pipe:SLUICE_CUDA_DECODE_PIPELINE=1,free:SLUICE_CUDA_DECODE_MAX_SHARED=0,old:SLUICE_CUDA_DECODE_PIPELINE=0 |
    grep -E "c=|Failed|ab_"
done
echo "done $(el)"

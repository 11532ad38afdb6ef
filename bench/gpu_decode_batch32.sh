#!/usr/bin/env bash
# Session 16, call 6 (bench/RESULTS.md): GPTQ Int4 at 32 streams decoded 1 ms a step slower
# after the pipelined decode attention landed (call 5): decode attention alone at batch 32 as
# the server runs it (a graph, bound 4,096, short contexts), both kernels, and Int4 at 32
# streams A/B (SLUICE_CUDA_DECODE_PIPELINE=1 / 0) alternating twice.
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
    touch $m4/.complete ) &
writer=$!
for k in 1 0; do
  for b in 1 32; do
    echo "== pipeline=$k batch $b graph bound 4096"
    SLUICE_CUDA_DECODE_PIPELINE=$k timeout 60 $B/prefill_attention_bench --decode --batch $b --graph --bound 4096 --iters 20 128 256 512 2>&1 | tee $R/decode_p${k}_b${b}_g4096.txt | tail -4
  done
done
echo "1. $(el) int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY=32 AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,pipe:SLUICE_CUDA_DECODE_PIPELINE=1,old:SLUICE_CUDA_DECODE_PIPELINE=0 |
  grep -E "c=|Failed|ab_"
echo "done $(el)"

#!/usr/bin/env bash
# Session 22's second call: issue 17's many-stream targets with the Hopper GEMM's stages by the
# copy engine (SLUICE_CUDA_GPTQ_GEMM90_TMA, default here 1; TMA=0 for the cp.async stages):
# bf16, Int8 and Int4 at 32, 64 and 256 streams in one call (128 in / 128 out), the most wanted
# first (Int8 and bf16 at 256 and 32: session 21 had Int8 at 87 % / 91 % of bf16).
# LIMIT=560 on an H100; the models are written in the background meanwhile.
source bench/gpu_call_setup.sh
export SLUICE_CUDA_GPTQ_GEMM90_TMA=${TMA:-1}
write_models_bg bf16 int8 int4
echo "1. bf16 model: $(wait_model $m) $(el)"
streams7 "32 256"
echo "2. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 256"
echo "3. int4 model: $(wait_model $m4) $(el)"
streamsq int4 "64 256"
echo "4. 64 streams, bf16 and int8 $(el)"
streams7 64
MAX_NUM_SEQS=256 CONCURRENCY="64" gq int8,sluice | grep -E "c=|Failed"
echo "done $(el)"

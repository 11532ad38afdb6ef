#!/usr/bin/env bash
# Session 25, call H: issue 17's many-stream table and the 2,000-token TTFT with this session's
# defaults (split-k sums in clusters, the multi-row tail, the row-run dequantization), bf16 in
# the same call. Every CudaGptq* test passed with these defaults in call B (CLUSTER=1 forced
# there, the default now). LIMIT=330 on an H100.
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
echo "1. int4 model: $(wait_model $m4) $(el)"
streamsq int4 "32 64 256"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"
echo "1. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 64 256"
echo "1. bf16 model: $(wait_model $m) $(el)"
streams7 "32 64 256"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"
echo "done $(el)"

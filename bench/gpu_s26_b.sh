#!/usr/bin/env bash
# Session 26, call B: the new defaults (the Hopper GEMM from 17 rows, the small-batch kernel to
# 16 where it runs; the 4-bit bf16-pair dequantization): the GPTQ tests, then issue 17's
# many-stream table, Int4 at 32 streams A/B against the small-batch kernel to 32 rows
# (MMA_MAX_ROWS=32 GEMM90_MIN_ROWS=33, the old routing). LIMIT=330 on an H100.
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
gpu_tests 'CudaGptqTest.Gemm*:CudaGptqTest.SwiGlu*:CudaGptqModelTest.*' 100
echo "1. int4 model: $(wait_model $m4) $(el)"
streamsq int4 "32 64 256"
echo "1. int4 32 streams, the old routing"
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=32 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=33 streamsq int4 32
echo "2. int8 model: $(wait_model $m8) $(el)"
streamsq int8 "32 64 256"
echo "3. bf16 model: $(wait_model $m) $(el)"
streams7 "32 64 256"
echo "done $(el)"

#!/usr/bin/env bash
# Decode attention in fewer launches (the fused merge, SLUICE_CUDA_DECODE_FUSED_COMBINE, and
# RopeKvWriteAttention, SLUICE_CUDA_DECODE_FUSED_ROPE), one GPU call a phase (bench/
# gpu_call_setup.sh's conventions):
#   bench/gpu_decode_fused.sh kernels   the fused decode tests, the attention and rope tests and
#                                       the model tests with the defaults, the model tests with
#                                       both switches off; the --decode bench (graph replay) at
#                                       batches 1 and 32, warm and cold L2
#   bench/gpu_decode_fused.sh model     the Int4 Qwen2-7B-shaped model's batch-1 A/B: both
#                                       switches on (the default) and each off, then both off
source bench/gpu_call_setup.sh
case ${1:-kernels} in
  kernels)
    timeout 240 $T $B/cuda_kernels_test --gtest_filter='FusedDecodeAttentionTest.*:DecodeAttentionTest.*:AttentionKernelTest.*:RopeKvWriteTest.*:CudaModel*:CudaGptqModelTest.*' > $R/tests_fused.txt 2>&1
    echo "1. tests, defaults rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_fused.txt | head -12
    SLUICE_CUDA_DECODE_FUSED_COMBINE=0 SLUICE_CUDA_DECODE_FUSED_ROPE=0 timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaModel*:CudaGptqModelTest.*:DecodeAttentionTest.*' > $R/tests_off.txt 2>&1
    echo "2. tests, both switches off rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_off.txt | head -6
    for batch in 1 32; do
      for cold in "" --cold; do
        echo "3. bench batch $batch $cold $(el)"
        timeout 120 $B/prefill_attention_bench --decode --graph $cold --batch $batch 128 512 2048 32000 2>&1 | tee $R/bench_b${batch}${cold}.txt
      done
    done
    ;;
  model)
    ( python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 &&
        touch $m4/.complete ) &
    writer=$!
    echo "int4 model: $(wait_model $m4) $(el)"
    AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,fused:SLUICE_CUDA_DECODE_FUSED_ROPE=1,comb0:SLUICE_CUDA_DECODE_FUSED_COMBINE=0,rope0:SLUICE_CUDA_DECODE_FUSED_ROPE=0 | grep -E "c=|Failed|ab_"
    SLUICE_CUDA_DECODE_FUSED_ROPE=0 AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,old:SLUICE_CUDA_DECODE_FUSED_COMBINE=0 | grep -E "c=|Failed|ab_"
    ;;
  *) echo "usage: bench/gpu_decode_fused.sh kernels|model"; exit 2 ;;
esac
echo "done $(el)"

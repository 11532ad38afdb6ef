#!/usr/bin/env bash
# Session 25, call A (written at session 24's end as gpu_next_session.sh; session 23's
# ran as part of gpu_s24_a.sh). The prefill's GPTQ dequantization staged in shared memory and
# stored in 16-byte row runs (SLUICE_CUDA_GPTQ_DEQUANT_ROWS=1, gptq_mma_layout.cu, off by
# default until this has run) against the scattered 4-byte stores (=0). Int8's gap at 32
# streams is its prefill (TTFT ~95 against ~86 ms: each layer dequantized), and Int4's TTFT
# at 2,000 tokens is 1.13x bf16's for the same reason. LIMIT=230 on an H100.
# 1. The GPTQ tests with =1; the dequantization test (against the checkpoint's weights rounded
#    once) with =0 too.
# 2. The products at 2,048 rows, 4 and 8 bits, =0 / =1 ("dequant us").
# 3. TTFT at 2,000 tokens (Int4, bf16) and Int8 at 32 streams, =0 / =1.
# If =1 passes and is faster: make it the default (cuda_tuning.h, cuda_tuning_test.cc).
# Ran (RESULTS "Session 25"): phase 2 printed nothing (the bench takes at most 1,024 rows);
# call A2 timed the products at 1,024 rows instead.
source bench/gpu_call_setup.sh
write_models_bg int4 int8 bf16
echo "1. GPTQ tests"
SLUICE_CUDA_GPTQ_DEQUANT_ROWS=1 gpu_tests 'CudaGptq*' 120 || { echo "tests failed"; exit 0; }
SLUICE_CUDA_GPTQ_DEQUANT_ROWS=0 gpu_tests 'CudaGptqTest.Dequant*' 30
for bits in 4 8; do
  for r in 0 1; do
    SLUICE_CUDA_GPTQ_DEQUANT_ROWS=$r timeout 30 $B/gptq_product_bench --bits $bits --iters 5 2048 \
      > $R/p_${bits}_$r.txt 2>&1
    echo "2. $bits bits ROWS=$r: $(grep -E '^(q\|k\|v|o|gate\|up|down) ' $R/p_${bits}_$r.txt |
      awk '{printf "%s %s | ", $1, $(NF-2)}')"
  done
done
echo "3. int4 model: $(wait_model $m4) $(el)"
for r in 0 1; do
  SLUICE_CUDA_GPTQ_DEQUANT_ROWS=$r SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 \
    gq int4,long | grep -E "tokens|Failed"
done
echo "3. int8 model: $(wait_model $m8) $(el)"
for r in 0 1; do SLUICE_CUDA_GPTQ_DEQUANT_ROWS=$r streamsq int8 32; done
echo "3. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"
streams7 32
echo "done $(el)"

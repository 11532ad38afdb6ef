#!/usr/bin/env bash
# One device call (session 14, the third; from the repo root on the GPU machine, .gpu/ carried
# as for bench/gpu_pending_check.sh), each step given what is left of LIMIT (default 585 s):
#  1. GPTQ tests with SLUICE_CUDA_GPTQ_PARTIALS=1 while the bf16 model is written;
#  2. structured output with the token masks on the device and the grammars' Accept spread over
#     threads (EngineCore::AcceptAhead): free / regex / JSON at 1, 32, 128 streams, fuzzers
#     paused (issue 22's 5 %);
#  3. GPTQ Int4 at one stream, partials off and on, alternating, then 32 and 64 streams with
#     the tensor-core product up to 64 rows (the default) and up to 16 (issue 17);
#  4. the staged decode attention's tests and its kernel timing against the default (issue 18).
source bench/gpu_call_setup.sh
write_models_bg
SLUICE_CUDA_GPTQ_PARTIALS=1 timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_partials.txt 2>&1
echo "1. gptq tests partials=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq_partials.txt | head -6
partials_ok=0; pass $R/tests_gptq_partials.txt && partials_ok=1

echo "2. bf16 model: $(wait_model $m) $(el)"
fuzz_pause
MASK_SWITCHES=1 g7 masks
fuzz_resume
rm -rf $m

if [ $partials_ok = 1 ] && [ $(left) -gt 120 ]; then  # the A/B takes ~90 s
  echo "3. int4 model: $(wait_model $m4) $(el)"
  AB_ROUNDS=2 KEEP_MODEL=1 gq int4,ab,base,partials:SLUICE_CUDA_GPTQ_PARTIALS=1
  # Where the tensor-core GPTQ product should hand over to dequantize + cuBLASLt (session 14:
  # 21 ms a step at 64 rows on the tensor cores, 23 ms for 256 rows the other way).
  for rows in 64 16; do
    echo "3. int4, SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$rows:"
    SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=$rows KEEP_MODEL=1 CONCURRENCY="32 64" MAX_NUM_SEQS=64 gq int4,sluice
  done
else echo "3. skipped (time or failed tests)"; fi

if [ $(left) -gt 60 ]; then
  SLUICE_CUDA_DECODE_STAGED=1 timeout $(( $(left) - 30 )) $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.*:-*Long*' > $R/tests_attn_staged1.txt 2>&1
  echo "4. attention tests staged=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_attn_staged1.txt | head -6
  for st in 0 1; do
    SLUICE_CUDA_DECODE_STAGED=$st timeout 20 $B/prefill_attention_bench --decode --batch 1 --iters 20 512 8192 32000 > $R/decode_s${st}_b1.txt 2>&1
    echo "4. decode staged=$st batch 1"; tail -4 $R/decode_s${st}_b1.txt
  done
fi
kill $writer 2>/dev/null; pkill -f make_qwen2_7b 2>/dev/null  # a model still being written
echo "done $(el)"

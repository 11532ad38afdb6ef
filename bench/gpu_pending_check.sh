#!/usr/bin/env bash
# One device call (run from the repo root on the GPU machine, .gpu/ carried: gpu-binaries.txz
# from bench/pack_gpu_binaries.sh, tok/ a Qwen tokenizer.json + tokenizer_config.json) for
# what was written without a GPU in sessions 11 and 12 and the figures issues 18, 21 and 22
# wait for, in order of need, each step given what time is left of LIMIT (default 585 s):
#  1. the card's ceilings (bench/copy_bandwidth.py) and every CUDA test in the default
#     configuration (issue 21; SamplingKernelTest.TokenMasksMatchCpu is session 12's kernel);
#  2. the bf16 Qwen2-7B-shaped model (written in the background meanwhile) through the server:
#     1 and 32 streams (issue 21's re-measurement), the token masks' cost (issue 22);
#  3. the opt-in paths' tests (cuda_tuning.h): GPTQ partials, staged decode attention with the
#     parallel combine, tensor-core prefill with two and three m-tiles a warp;
#  4. prefill_attention_bench: decode attention at contexts 512-32000 (batch 1, 8, 32) with and
#     without staging, prefill in its four forms;
#  5. through the server again: long
#     prompts against transformers and 8 x 20,000 (issue 18, staged decode on if its tests
#     passed), the shared prefix, then the long-prompt A/B of the staged and m-tile switches.
# GPTQ's share is bench/gpu_pending_gptq.sh. Results in $OUT/res.tgz (a device call brings
# back 8 files at most); bench/RESULTS.md says what each figure decides.
source bench/gpu_call_setup.sh
m=$W/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1; cat $m/*.safetensors > /dev/null ) &
writer=$!
python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1

if [ "${FULL:-1}" = 1 ]; then
  timeout 200 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
  echo "1. all CUDA tests, defaults rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED" $R/tests_all.txt | head -12
else  # the suite ran in an earlier call: only the model tests and the mask kernel's
  timeout 100 $T $B/cuda_kernels_test --gtest_filter='*CudaModelTest*:SamplingKernelTest.*' > $R/tests_all.txt 2>&1
  echo "1. model + sampling tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |result|FAILED" $R/tests_all.txt | head -12
fi
# The model tests with prefill attention on CUDA cores: session 13's llama3_gpu chunked-prefill
# error (0.0121) against the tensor-core kernel's (the only fixture with a head dim it takes).
SLUICE_CUDA_PREFILL_TC=0 timeout 60 $T $B/cuda_kernels_test --gtest_filter='*CudaModelTest.Chunked*' > $R/tests_model_tc0.txt 2>&1
echo "1. chunked-prefill logits, SLUICE_CUDA_PREFILL_TC=0 rc=$? $(el)"; grep -E "result|FAILED" $R/tests_model_tc0.txt | head -6
# run_on_gpu.sh prints gtest's brief output (failures only): the suite ran and the test is not among them.
masks_ok=0; grep -q "tests from SamplingKernelTest (" $R/tests_all.txt &&
  ! grep -q "FAILED.*TokenMasksMatchCpu" $R/tests_all.txt && masks_ok=1

wait $writer; echo "2. bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
CONCURRENCY="1 32" g7 sluice
MASK_SWITCHES=$([ $masks_ok = 1 ] && echo "1 0" || echo 0) g7 masks
staged_ok=0; mt_ok=""
if [ $(left) -gt 300 ]; then  # 3 and 4 take up to ~4 minutes
SLUICE_CUDA_GPTQ_PARTIALS=1 timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_partials.txt 2>&1
echo "3. gptq tests partials=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_gptq_partials.txt | head -6
SLUICE_CUDA_DECODE_STAGED=1 timeout 120 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.*' > $R/tests_attn_staged1.txt 2>&1
echo "3. attention tests staged=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_attn_staged1.txt | head -6
pass $R/tests_attn_staged1.txt && staged_ok=1
for mt in 2 3; do
  SLUICE_CUDA_PREFILL_MTILES=$mt timeout 60 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.TensorCore*' > $R/tests_tc_m$mt.txt 2>&1
  echo "3. tensor-core prefill tests mtiles=$mt rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_tc_m$mt.txt | head -6
  pass $R/tests_tc_m$mt.txt && mt_ok="$mt_ok $mt"
done

for st in 0 1; do
  for b in 1 8 32; do
    SLUICE_CUDA_DECODE_STAGED=$st timeout 30 $B/prefill_attention_bench --decode --batch $b --iters 20 512 2048 8192 20000 32000 > $R/decode_s${st}_b$b.txt 2>&1
    echo "4. decode staged=$st batch $b"; tail -6 $R/decode_s${st}_b$b.txt
  done
done
for f in default SLUICE_CUDA_PREFILL_WARPS=8 SLUICE_CUDA_PREFILL_MTILES=2 SLUICE_CUDA_PREFILL_MTILES=3; do
  v=$f; [ $f = default ] && v=X=1
  echo "4. prefill form: $f"; env $v timeout 40 $B/prefill_attention_bench --iters 5 > $R/prefill_$f.txt 2>&1; tail -5 $R/prefill_$f.txt
done
echo "kernels done $(el)"
else echo "3, 4 skipped (time)"; fi

[ $staged_ok = 1 ] && export SLUICE_CUDA_DECODE_STAGED=1
echo "long: SLUICE_CUDA_DECODE_STAGED=${SLUICE_CUDA_DECODE_STAGED:-0}"
g7 long prefix
export SLUICE_CUDA_DECODE_STAGED=0; echo "long: staged=0"; SKIP_HF=1 LONG_STREAMS=0 g7 long
for mt in $mt_ok; do echo "long: mtiles=$mt"; SLUICE_CUDA_PREFILL_MTILES=$mt SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="7000 20000" g7 long; done
echo "ttft, 2,000-token prompt (against GPTQ):"; ISL=2000 OSL=16 CONCURRENCY=1 g7 sluice
echo "done $(el)"

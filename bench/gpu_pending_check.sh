#!/usr/bin/env bash
# One device call (run from the repo root on the GPU machine, .gpu/ carried: gpu-binaries.txz
# from bench/pack_gpu_binaries.sh, tok/ a Qwen tokenizer) for the GPU paths written in session
# 11 without a GPU, all opt-in (cuda_tuning.h) until this has run: their kernel tests
# (GPTQ partials, staged decode + parallel combine, prefill with two m-tiles a warp), the
# decode attention bench at contexts 512-32000 (batch 1, 8, 32) with and without staging, the
# prefill bench in its four forms, then GPTQ Int4's batch-1 step profile and an A/B of
# SLUICE_CUDA_GPTQ_PARTIALS and SLUICE_CUDA_DECODE_STAGED through the server. Session 12 added
# the token-mask kernel (SLUICE_CUDA_TOKEN_MASKS, structured output sampled on the device):
# its test is SamplingKernelTest.TokenMasksMatchCpu.
# Results under $OUT/r; bench/RESULTS.md ("Written without a GPU, session 11") says what each
# figure decides.
set -uo pipefail
mkdir -p /work && ln -sfn "$PWD" /work/main
G=/tmp/g; R=$OUT/r; mkdir -p $G $R && tar xJf .gpu/gpu-binaries.txz -C $G; B=$G/bin
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv | tee $R/gpu.txt
t0=$(date +%s); el() { echo "[$(( $(date +%s) - t0 )) s]"; }
T=tests/gpu/run_on_gpu.sh
SLUICE_CUDA_GPTQ_PARTIALS=1 timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_partials.txt 2>&1
echo "gptq tests partials=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|info|result" $R/tests_gptq_partials.txt | head -12
SLUICE_CUDA_DECODE_STAGED=1 timeout 120 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.*' > $R/tests_attn_staged1.txt 2>&1
echo "attention tests staged=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|Failure" $R/tests_attn_staged1.txt | head -8
timeout 45 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.Decode*:AttentionKernelTest.Loose*:AttentionKernelTest.Graph*' > $R/tests_attn_staged0.txt 2>&1
echo "decode tests staged=0 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_attn_staged0.txt | head -8
timeout 60 $T $B/cuda_kernels_test --gtest_filter='SamplingKernelTest.*' > $R/tests_sampling.txt 2>&1
echo "sampling tests (token masks, session 12) rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|Failure" $R/tests_sampling.txt | head -8
for m in 2 3; do
  SLUICE_CUDA_PREFILL_MTILES=$m timeout 60 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.TensorCore*' > $R/tests_tc_m$m.txt 2>&1
  echo "tensor-core prefill tests mtiles=$m rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_tc_m$m.txt | head -8
done
for st in 0 1; do
  for b in 1 8 32; do
    SLUICE_CUDA_DECODE_STAGED=$st timeout 30 $B/prefill_attention_bench --decode --batch $b --iters 20 512 2048 8192 20000 32000 > $R/decode_s${st}_b$b.txt 2>&1
    tail -6 $R/decode_s${st}_b$b.txt
  done
done
for f in default SLUICE_CUDA_PREFILL_WARPS=8 SLUICE_CUDA_PREFILL_MTILES=2 SLUICE_CUDA_PREFILL_MTILES=3; do
  v=$f; [ $f = default ] && v=X=1
  echo "== prefill form: $f"; env $v timeout 40 $B/prefill_attention_bench --iters 5 > $R/prefill_$f.txt 2>&1; tail -4 $R/prefill_$f.txt
done
echo "kernels done $(el)"
AB_ROUNDS=1 timeout $(( 585 - ($(date +%s) - t0) )) bench/gpu_7b_gptq.sh $B .gpu/tok /tmp/w $R/gptq int4,profile,ab,base,partials:SLUICE_CUDA_GPTQ_PARTIALS=1,staged:SLUICE_CUDA_DECODE_STAGED=1 2>&1 | tail -30
echo "done $(el)"

#!/usr/bin/env bash
# Session 17, the first call that ran (bench/RESULTS.md "Session 17"): the kernels written
# without a GPU this session, tested and timed, then end to end.
#  1. every CUDA test with the defaults (wgmma prefill attention, SLUICE_CUDA_PREFILL_WGMMA=2;
#     the Hopper GPTQ GEMM past 64 rows; cuBLASLt plans by row bucket; decode attention's fused
#     merge and rope); where the fused decode's tests fail, the end-to-end runs go without it;
#     where attention tests
#     fail, again with the wgmma kernel's sequential schedule (=1), and the end-to-end runs
#     below take the best form that passed (the GEMM likewise: off where its tests fail);
#  2. prefill attention alone (wgmma / mma.sync, TFLOP/s), decode attention alone (fused /
#     separate, batch 1 and 32), the GPTQ products at 64-512 rows
#     (the Hopper GEMM against dequantization + cuBLASLt);
#  3. bf16 Qwen2-7B: TTFT against transformers at 1,800-32,000 tokens, 8 x 20,000, the shared
#     prefix; Int4 at 256 and 64 streams.
source bench/gpu_call_setup.sh
write_models_bg
failed() { grep -E "^\[  FAILED  \] [A-Za-z]" "$1" | sed 's/ (.*//' | sort -u; }
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. every CUDA test rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|tests ran" $R/tests_all.txt | head -3
failed $R/tests_all.txt | head -20
if failed $R/tests_all.txt | grep -q Attention; then
  SLUICE_CUDA_PREFILL_WGMMA=1 timeout 100 $T $B/cuda_kernels_test --gtest_filter='*Attention*' > $R/tests_attn_w1.txt 2>&1
  echo "1b. attention tests, wgmma schedule 1 rc=$? $(el)"; failed $R/tests_attn_w1.txt | head -10
  grep -E "Failure|Expected|error" $R/tests_all.txt | grep -iv gptq | head -8
  if pass $R/tests_attn_w1.txt; then export SLUICE_CUDA_PREFILL_WGMMA=1; else export SLUICE_CUDA_PREFILL_WGMMA=0; fi
fi
if failed $R/tests_all.txt | grep -qE "Decode|CudaModel|RopeKv"; then
  SLUICE_CUDA_DECODE_FUSED_COMBINE=0 SLUICE_CUDA_DECODE_FUSED_ROPE=0 timeout 100 $T $B/cuda_kernels_test \
    --gtest_filter='*Decode*:CudaModel*:CudaGptqModelTest.*' > $R/tests_unfused.txt 2>&1
  echo "1c. decode and model tests, fused decode off rc=$? $(el)"; failed $R/tests_unfused.txt | head -10
  grep -E "Failure|differs|Expected" $R/tests_all.txt | grep -iv gptq | head -8
  export SLUICE_CUDA_DECODE_FUSED_COMBINE=0 SLUICE_CUDA_DECODE_FUSED_ROPE=0
fi
if failed $R/tests_all.txt | grep -q Gptq; then
  grep -E "Failure|relative|mismatch|Expected" $R/tests_all.txt | grep -iv attention | head -10
  export SLUICE_CUDA_GPTQ_GEMM90=0
fi
echo "end to end with: $(env | grep -E '^SLUICE_CUDA' | tr '\n' ' ')"
P=$B/prefill_attention_bench
for w in 2 1; do
  SLUICE_CUDA_PREFILL_WGMMA=$w timeout 100 $P --iters 5 --no-cuda-cores 1800 7000 20000 32000 > $R/prefill_w$w.txt 2>&1
  echo "2. prefill attention, wgmma schedule $w $(el)"; grep -vE "^\s*$" $R/prefill_w$w.txt | tail -6
done
for b in 1 32; do
  timeout 40 $P --decode --graph --batch $b 128 512 2048 32000 > $R/decode_b$b.txt 2>&1
  echo "2a. decode attention, batch $b $(el)"; grep -vE "^\s*$" $R/decode_b$b.txt | tail -5
done
timeout 60 $B/gptq_product_bench 64 128 256 512 > $R/gemm4.txt 2>&1
echo "2b. GPTQ GEMM, 4 bits $(el)"; tail -12 $R/gemm4.txt
timeout 40 $B/gptq_product_bench --bits 8 128 256 > $R/gemm8.txt 2>&1
echo "3. bf16 model: $(wait_model $m) $(el)"
g7 long prefix | grep -E "transformers|sluice |Failed"
rm -rf $W/repo
echo "4. int4 model: $(wait_model $m4) $(el)"
CONCURRENCY="256 64" MAX_NUM_SEQS=256 gq int4,sluice | grep -E "c=|Failed"
echo "done $(el)"

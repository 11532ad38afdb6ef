#!/usr/bin/env bash
# For the next GPU call (written at session 25's end, unrun). Session 25 changed two things
# every CUDA test leans on and ran only the GPTQ tests (CudaGptq*) on a GPU with them:
# CudaDevice::Upload now copies on the step's stream and waits for it (a plain cudaMemcpy ran
# on the legacy stream, unordered with the non-blocking step stream, and could return before
# its bytes landed: the rare unwritten outputs of sessions 24 and 25), and the tests'
# DeviceArray::Upload and the fused decode attention test's NaN poison synchronize the device.
# LIMIT=300 on an H100.
# 1. Every CUDA test in the default configuration (the full suite: ~3 minutes).
# 2. The GPTQ GEMM tests five times with fresh seeds (the rare failure's ground).
source bench/gpu_call_setup.sh
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests rc=$? $(el)"
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|FAILED" $R/tests_all.txt | head -12
for i in 1 2 3 4 5; do
  timeout 40 $T $B/cuda_kernels_test --gtest_filter='CudaGptqTest.Gemm*:CudaGptqTest.Linear*' \
    > $R/tests_gemm_$i.txt 2>&1
  echo "2. run $i rc=$? $(grep -E "seed|FAILED" $R/tests_gemm_$i.txt | head -3 | tr '\n' ' ') $(el)"
done
echo "done $(el)"

#!/usr/bin/env bash
# One device call (run from the repo root on the GPU machine, .gpu/ carried: gpu-binaries.txz
# from bench/pack_gpu_binaries.sh, tok/ a Qwen tokenizer): the tensor-core paths checked and
# measured (session 10's call A, bench/RESULTS.md): every CUDA test with the GPTQ tile layout
# (the attention tests run the tensor-core prefill kernel at the kernel API), the GPTQ tests in
# the column layout, prefill_attention_bench, then GPTQ int4 through the server (A/B of the
# tile layout against the column layout at batch 1, then 1/8/32/64 streams with it on).
# Results under /tmp/res, tarred to $OUT at the end.
set -uo pipefail
mkdir -p /work && ln -sfn "$PWD" /work/main
G=/tmp/g; R=/tmp/res; mkdir -p $G $R && tar xJf .gpu/gpu-binaries.txz -C $G; B=$G/bin
export PYTHONUNBUFFERED=1
finish() { tar czf "$OUT/res.tgz" -C $R . ; }
trap finish EXIT
nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv | tee $R/gpu.txt
t0=$(date +%s)
SLUICE_CUDA_GPTQ_MMA=1 timeout 200 tests/gpu/run_on_gpu.sh $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "all CUDA tests (GPTQ mma on) rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "^\[  (FAILED|PASSED) |tests ran|FAILED|result" $R/tests_all.txt | head -30
t0=$(date +%s)
SLUICE_CUDA_GPTQ_MMA=0 timeout 60 tests/gpu/run_on_gpu.sh $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_col.txt 2>&1
echo "GPTQ tests, column layout rc=$? in $(( $(date +%s) - t0 )) s"; grep -E "^\[  (FAILED|PASSED) |result" $R/tests_gptq_col.txt | head
timeout 90 $B/prefill_attention_bench > $R/prefill_bench.txt 2>&1; echo "prefill bench rc=$?"; tail -8 $R/prefill_bench.txt
export SLUICE_CUDA_GPTQ_MMA=1
AB_ROUNDS=1 CONCURRENCY="1 8 32 64" timeout 330 bench/gpu_7b_gptq.sh $B .gpu/tok /tmp/w $R int4,sluice,ab,mma,col:SLUICE_CUDA_GPTQ_MMA=0 2>&1 | tail -20

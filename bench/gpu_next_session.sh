#!/usr/bin/env bash
# For the next GPU call (written in session 30, widened in session 31, neither of which got a
# machine for it; LIMIT=300 or more, an H100 or H200): the Hopper GEMM's whole launches and
# those sliced through the workspace in clusters of two column blocks that copy x once for
# both (TMA multicast, SLUICE_CUDA_GPTQ_GEMM90_MULTICAST, bench/pending/gemm90_multicast.patch,
# on in the binaries), measured against single blocks.
# Build first (here): `git apply bench/pending/gemm90_multicast.patch`, every GPU target, then
# `bench/pack_gpu_binaries.sh build /tmp/gpu-binaries.txz` moved to .gpu/ (with tok.txz), and
# `git checkout -- src tests bench/gptq_product_bench.cc`; main's gptq_product_bench stripped
# (--strip-debug) and xz'd as .gpu/base/gq_main.xz. Its code lands only if phase 0
# passes and phase 1 says right (--check) and faster.
# 0. The GEMM tests with it (pairs bit-identical to single blocks; the SwiGLU launch, now in
#    pairs too, against the GEMM then SiluMul).
# 1. A/B in one binary (MULTICAST=0 / 1): 4 bits at 256, 1,024 and 2,048 rows with --check,
#    again without; 8 bits at 2,048 with --check; 2,048 rows with down in one slice
#    (SPLITS=1) instead of the plan's 4 through the workspace (which take pairs since session
#    31).
# 2. Nsight Compute on gate|up at 2,048 rows in pairs: L2 throughput and the full-barrier waits
#    (session 30 call A: L2 62 %, 18 % of samples waiting for stages).
# 3. TTFT at 2,000 tokens: Int4 and Int8 with and without pairs, bf16; 256 streams Int4 both.
# 4. On an H200: issue 17's batch-1 targets. Then every CUDA test with the time left.
source bench/gpu_call_setup.sh
# SHORT=1: phases 0 and 1 only (no models written), for a call with little device time left.
[ -n "${SHORT:-}" ] || write_models_bg int4 bf16 int8
# Pairs measured only where their tests pass; else everything after runs without them.
pairs="0 1"
if ! gpu_tests 'TensorMapTest.*:CudaGptqTest.Gemm*:CudaGptqTest.SwiGlu*' 150; then
  echo "PAIRS FAILED: the rest without them"; pairs=0; export SLUICE_CUDA_GPTQ_GEMM90_MULTICAST=0
fi
mc() {  # mc ARGS...: the product bench without and with pairs
  for v in $pairs; do
    echo "1. MULTICAST=$v $* $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_MULTICAST=$v timeout 60 $B/gptq_product_bench "$@" |
      grep -E "^(q\||o |gate|down|check|swiglu|chain)"
  done
}
mc --bits 4 --iters 7 256 1024 2048 --check
# main's binary (.gpu/base/gq_main.xz: this patch's base, built before it): whether the pairs'
# code costs the single blocks anything
xz -dc .gpu/base/gq_main.xz > $B/real/gq_main && chmod +x $B/real/gq_main
echo "1. main $(el)"
LD_LIBRARY_PATH=$G/lib timeout 60 $B/real/gq_main --bits 4 --iters 7 1024 2048 |
  grep -E "^(q\||o |gate|down)"
mc --bits 4 --iters 7 1024 2048
mc --bits 8 --iters 7 2048 --check
# down at 2,048 rows runs in 4 slices through the workspace (its 224 blocks are 1.7 waves),
# in pairs with the patch: against one slice (1.7 waves, no partials), with and without pairs
echo "1. SPLITS=1 $(el)"
SLUICE_CUDA_GPTQ_GEMM90_SPLITS=1 mc --bits 4 --iters 7 2048
[ -z "${SHORT:-}" ] || { echo "done (SHORT) $(el)"; exit 0; }
echo "2. ncu, gate|up at 2,048 rows in pairs $(el)"
[ "$pairs" = 0 ] || [ "$(left)" -lt 260 ] || LD_LIBRARY_PATH=$G/lib timeout 120 ncu --clock-control none -k regex:GptqGemm90Kernel \
  --launch-skip 6 --launch-count 1 --section SpeedOfLight --section WarpStateStats \
  --section SchedulerStats --section MemoryWorkloadAnalysis --section SourceCounters \
  --import-source no -o $R/gateup $B/real/gptq_product_bench --bits 4 --iters 1 --reps 1 2048 \
  > $R/ncu_run.txt 2>&1
echo "rc=$?"
timeout 30 ncu -i $R/gateup.ncu-rep --page details > $R/ncu_gateup.txt 2>&1
timeout 60 ncu -i $R/gateup.ncu-rep --page source --csv --print-source sass > $R/gateup_sass.csv 2>&1
python3 bench/ncu_source_top.py $R/gateup_sass.csv --top 12 2>&1 | tee $R/gateup_top.txt | head -30
grep -E "Grid Size|Cluster|Duration|L2 Cache Throughput|DRAM Throughput|Compute \(SM\)|Eligible|Warp Cycles Per Issued" \
  $R/ncu_gateup.txt | head -16
echo "3. models: $(wait_model $m4) / $(wait_model $m) $(el)"
for v in $pairs; do
  echo "3. int4 TTFT, MULTICAST=$v"
  SLUICE_CUDA_GPTQ_GEMM90_MULTICAST=$v ttftq int4
done
ttft7
echo "3. int4 256 streams, MULTICAST=${pairs##* } / 0 $(el)"
streamsq int4 256
[ "$pairs" = 0 ] || SLUICE_CUDA_GPTQ_GEMM90_MULTICAST=0 streamsq int4 256
echo "3. models: $(wait_model $m8) $(el)"
for v in $pairs; do
  echo "3. int8 TTFT, MULTICAST=$v"
  SLUICE_CUDA_GPTQ_GEMM90_MULTICAST=$v ttftq int8
done
if grep -q H200 $R/gpu.txt; then
  python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
  echo "4. H200 batch 1 $(el)"
  streamsq int4 1; streamsq int8 1; streams7 1
fi
echo "4. every CUDA test $(el)"
[ "$(left)" -gt 40 ] && timeout $(( $(left) - 10 )) $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "rc=$? $(el)"
grep -E "^\[  (PASSED|FAILED|SKIPPED) +\]|tests ran" $R/tests_all.txt | head -12
echo "done $(el)"

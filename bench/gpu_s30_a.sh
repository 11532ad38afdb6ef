#!/usr/bin/env bash
# Session 30's call A (written in sessions 27-29; ran on an H100, RESULTS "Session 30"): the
# trims and the SwiGLU launch landed, the byte permutation did not (no faster). LIMIT=500.
# Build first (here), in this order, each gptq_product_bench kept under .gpu/base/ (xz -T2):
#   main -> gq_base.xz; `git apply bench/pending/gemm90_loop_trims.patch` -> gq_trims.xz;
#   with `git apply bench/pending/gemm90_prmt.patch` too -> gq_prmt.xz, then that patch taken
#   back out (git apply -R); `git apply bench/pending/gemm90_swiglu.patch`, then every GPU
#   target and the pack
#   (bench/pack_gpu_binaries.sh build /tmp/gpu-binaries.txz; mv it to .gpu/): its binaries
#   carry both patches. Then `git checkout -- src tests bench/gptq_product_bench.cc` and
#   remove the two files the last patch adds (tests/gpu/gptq_gemm90_swiglu_test.cc,
#   src/backends/llm/device/cuda/gptq_gemm90_block.cuh).
# A patch's code lands (and its file goes) only if phase 0's tests pass with it and phase 0b
# says it is right (--check) and no slower; the SwiGLU launch also by phase 3's TTFT.
# 0. The GEMM tests with both patches (the SwiGLU launch against the product and SiluMul bit
#    for bit, the clusters-past-capacity fallback and the tensor map's refusals: never run).
# 0b. gq_base / gq_trims / gq_prmt / the pack's (trims + SwiGLU), each in turn: 4 bits at
#    2,048 rows with --check, then 1,024 and 2,048 again without; 8 bits at 2,048; the pack's
#    swiglu / chain lines.
# 1. Nsight Compute on gate|up at 2,048 rows alone: stall reasons, and the source page's
#    per-instruction samples (bench/ncu_source_top.py). The 7th Hopper GEMM launch of the
#    bench: q|k|v's two (a whole launch and a sliced tail) and o's one in each of the warm-up
#    and the timed replay come first (session 27 saw six before gate|up); the grid printed
#    says which product it was (gate|up: 8 x 296), the kernel being the same 256 x 128 one.
# 2. The step order's GEMM against the load order's (word selection vs per-step group checks).
# 3. TTFT at 2,000 tokens, Int4 with the GEMM to 2,048 rows (SwiGLU launch on / off) and to
#    1,024 (default), bf16; Int8 likewise; Int4 at 32 streams with the old routing against the
#    default.
source bench/gpu_call_setup.sh
write_models_bg int4 bf16 int8
gpu_tests 'TensorMapTest.*:CudaGptqTest.Gemm*:CudaGptqTest.SwiGlu*' 120
for v in base trims prmt; do
  xz -dc .gpu/base/gq_$v.xz > $B/real/gq_$v && chmod +x $B/real/gq_$v
done
gqab() {  # gqab "BINARIES" BITS ROWS... [--check]: each binary in turn
  local bins=$1 bits=$2; shift 2
  for bin in $bins; do
    echo "0b. $bits bits, $bin $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 LD_LIBRARY_PATH=$G/lib $B/real/$bin --bits $bits \
      --iters 7 "$@" | grep -E "^(q\||o |gate|down|check|swiglu|chain)"
  done
}
gqab "gq_base gq_trims gq_prmt gptq_product_bench" 4 2048 --check
gqab "gptq_product_bench gq_prmt gq_trims gq_base" 4 1024 2048
gqab "gq_base gptq_product_bench" 8 2048 --check
# On an H200 (never started before): issue 17's batch-1 targets first, with the card's copy
# bandwidth (Int4 >= 500, Int8 >= 350 output tok/s, 1 stream, 128 in / 128 out).
if grep -q H200 $R/gpu.txt; then
  python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
  echo "H200 batch 1: models $(wait_model $m4) / $(wait_model $m8) / $(wait_model $m) $(el)"
  streamsq int4 1; streamsq int8 1; streams7 1
fi
echo "1. ncu, gate|up at 2,048 rows $(el)"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 LD_LIBRARY_PATH=$G/lib timeout 120 ncu --clock-control none \
  -k regex:GptqGemm90Kernel --launch-skip 6 --launch-count 1 --section SpeedOfLight \
  --section WarpStateStats --section SchedulerStats --section SourceCounters --import-source no \
  -o $R/gateup $B/real/gptq_product_bench --bits 4 --iters 1 --reps 1 2048 > $R/ncu_run.txt 2>&1
echo "rc=$?"
timeout 30 ncu -i $R/gateup.ncu-rep --page details > $R/ncu_gateup.txt 2>&1
timeout 60 ncu -i $R/gateup.ncu-rep --page source --csv --print-source sass > $R/gateup_sass.csv 2>&1
echo "sass rows: $(wc -l < $R/gateup_sass.csv)"
python3 bench/ncu_source_top.py $R/gateup_sass.csv --top 30 2>&1 | tee $R/gateup_top.txt | head -60
grep -E "Grid Size|Duration|Issue Slots|Warp Cycles Per Issued|Eligible|Active Warps|stall|Stall" \
  $R/ncu_gateup.txt | head -30
echo "3. models: $(wait_model $m4) / $(wait_model $m) $(el)"
echo "3. int4 TTFT, GEMM90_MAX_ROWS=2048 (SwiGLU launch on)"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 ttftq int4
echo "3. int4 TTFT, GEMM90_MAX_ROWS=2048, SWIGLU=0"
SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 SLUICE_CUDA_GPTQ_SWIGLU=0 ttftq int4
echo "3. int4 TTFT, default (GEMM90_MAX_ROWS=1024)"
ttftq int4
ttft7
for bits in 4 8; do
  for order in 2 1; do
    [ "$(left)" -gt 60 ] || break
    echo "2. order $order, $bits bits $(el)"
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 $B/gptq_product_bench --bits $bits --order $order \
      --iters 7 1024 2048 | grep -E "^(q\||o |gate|down)"
  done
done
echo "3. models: $(wait_model $m8) $(el)"
for mr in 2048 1024; do
  echo "3. int8 TTFT, GEMM90_MAX_ROWS=$mr"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=$mr ttftq int8
done
echo "3. int4 32 streams: default / the old routing"
streamsq int4 32
SLUICE_CUDA_GPTQ_MMA_MAX_ROWS=32 SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS=33 streamsq int4 32
streams7 32
echo "done $(el)"

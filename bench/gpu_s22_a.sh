#!/usr/bin/env bash
# Session 22's first call: session 21's call C (which got no machine), with the Hopper GEMM's
# stages by the copy engine (SLUICE_CUDA_GPTQ_GEMM90_TMA=1, written in session 22) added to its
# tests, products and Int4 run. Session 21's part: the 4-bit GEMMs' nibbles in one LOP3
# (gptq_common.cuh NibblesOr128, as the small-batch kernel already had): the Hopper GEMM's
# chunk from ~370 to ~340 SASS instructions a warp, the same arithmetic (bit-identical).
# Needs .gpu/base_gptq_product_bench (the bench built at 97e237e, before the change, stripped).
# LIMIT=540 fits every phase on an H100 (the Int4 model's writing is the long pole).
# 1. The GPTQ GEMMs' tests (against float64 at every shape, sliced, fused, graph replays), the
#    step profiler's (its prefill kinds now by row bucket) and the model test (greedy tokens
#    equal to the dequantized bf16 twin's).
# 2. The products alone, before / after / after with TMA, same call, 4 bits, 64 / 128 / 256 rows.
# 3. Int4 end to end at 1 and 256 streams (session 21: 360.0 at 1, 13,910 at 256), and at 256
#    with TMA.
# 4. The step profile of a 7,000-token bf16 prompt in the server, now that the profiler keeps
#    prefill steps by their rows' power of two (session 21's call A could not separate them).
source bench/gpu_call_setup.sh
write_models_bg int4 bf16
F='CudaGptqTest.Gemm*:CudaGptqModelTest.*:StepProfilerTest.*'
timeout 160 $T $B/cuda_kernels_test --gtest_filter=$F > $R/tests_gptq.txt 2>&1
echo "1. GPTQ tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_gptq.txt | head -12
chmod +x .gpu/base_gptq_product_bench
vs="base new tma"; pass $R/tests_gptq.txt || vs="base new"  # a TMA kernel that fails may hang
for round in 1 2; do
  for v in $vs; do
    bin=$B/gptq_product_bench; [ $v = base ] && bin=.gpu/base_gptq_product_bench
    tma=0; [ $v = tma ] && tma=1
    SLUICE_CUDA_GPTQ_GEMM90_TMA=$tma timeout 60 $bin --iters 9 64 128 256 \
      > $R/products_${v}_$round.txt 2>&1
    echo "2. $v round $round rc=$? $(el)"
    grep -E "^(q\|k\|v|o|gate\|up|down) +(64|128|256) " $R/products_${v}_$round.txt | awk '{print $1, $2, $3, $5}'
  done
done
echo "3. int4 model: $(wait_model $m4) $(el)"
KEEP_MODEL=1 MAX_NUM_SEQS=256 CONCURRENCY="1 256" gq int4,sluice | grep -E "c=|Failed"
echo "3b. int4 with TMA $(el)"
[ "$vs" = "base new tma" ] && SLUICE_CUDA_GPTQ_GEMM90_TMA=1 MAX_NUM_SEQS=256 CONCURRENCY="256" \
  gq int4,sluice | grep -E "c=|Failed"
rm -rf $W/int4
echo "4. bf16 model: $(wait_model $m) $(el)"
MAX_MODEL_LEN=8192 MAX_BATCHED_TOKENS=16384 ISL=7000 OSL=4 PROFILE_MODES=eager g7 profile |
  grep -E "<= 8192 rows"
grep -E "Mean TTFT" $R/profile_eager_bench.txt
echo "done $(el)"

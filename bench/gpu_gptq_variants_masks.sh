#!/usr/bin/env bash
# Session 15, call 3 (bench/RESULTS.md; .gpu/variants held the two variants' modules and
# benches, built by hand from c8c45cf with the changes described there): the tensor-core GPTQ product's weight loads that skip
# L1 with one group-index load a 16-byte load (e13, the tree) against c8c45cf (base) and
# against e13 with 4 blocks an SM forced at one n8 tile (e123); the GPTQ tests; structured
# output's steady-state cost with RowWorkers; Int4 end to end for the three.
source bench/gpu_call_setup.sh
write_models_bg
mkdir -p $G/v
for v in base e13 e123; do xz -dc .gpu/variants/bench_$v.xz > $G/v/bench_$v; chmod +x $G/v/bench_$v; done
for round in 1 2; do
  for v in base e13 e123; do
    echo "== bench 4-bit $v round $round"
    LD_LIBRARY_PATH=$G/lib timeout 60 $G/v/bench_$v 1 2 4 8 16 32 2>&1 | tee $R/bench4_${v}_$round.txt | tail -n +3
  done
done
echo "== bench 8-bit e13"; LD_LIBRARY_PATH=$G/lib timeout 60 $G/v/bench_e13 --bits 8 1 4 16 32 2>&1 | tee $R/bench8_e13.txt | tail -n +3
echo "1. benches $(el)"
timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*:SamplingKernelTest.*' > $R/tests_gptq.txt 2>&1
echo "2. gptq + sampling tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED|result" $R/tests_gptq.txt | head -6
echo "3. bf16 model: $(wait_model $m) $(el)"
fuzz_pause
MASK_SWITCHES=1 MASK_OUTPUT_LEN=256 MASK_WAVES=1 MASK_ROUNDS=2 g7 masks
fuzz_resume
rm -rf $m
# The three device modules, each in a copy of the binaries.
for v in base e123; do
  mkdir -p $G/$v && cp -a $G/bin $G/lib $G/$v/ && xz -dc .gpu/variants/$v.so.xz > $G/$v/bin/real/libsluice_cuda_device.so
done
echo "4. int4 model: $(wait_model $m4) $(el)"
for round in 1 2; do
  AB_ROUNDS=1 KEEP_MODEL=1 GQ_BIN=$G/base/bin gq int4,ab,base_r$round | grep "c=1"
  AB_ROUNDS=1 KEEP_MODEL=1 gq int4,ab,e13_r$round | grep "c=1"
  AB_ROUNDS=1 KEEP_MODEL=1 GQ_BIN=$G/e123/bin gq int4,ab,e123_r$round | grep "c=1"
done
KEEP_MODEL=1 CONCURRENCY="32 64" MAX_NUM_SEQS=64 gq int4,sluice | grep -E "c=|Failed"
kill $writer 2>/dev/null; pkill -f make_qwen2_7b 2>/dev/null
echo "done $(el)"

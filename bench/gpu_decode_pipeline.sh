#!/usr/bin/env bash
# Session 16, call 5 (bench/RESULTS.md): the pipelined decode attention (helper branch decode)
# and everything merged since call 4: every CUDA test in the default configuration, decode
# attention alone with SLUICE_CUDA_DECODE_PIPELINE=1 / 0, then through the server (bf16
# Qwen2-7B): ITL after prompts of 512 to 32,000 tokens, 8 x 20,000-token streams, the shared
# prefix (32 warm at once and one after another); GPTQ Int4 at 1 and 32 streams.
source bench/gpu_call_setup.sh
write_models_bg
timeout 240 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. every CUDA test rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |FAILED|tests ran|Segmentation" $R/tests_all.txt | head -14
for k in 1 0; do
  for b in 1 32; do
    echo "== decode pipeline=$k batch $b"
    SLUICE_CUDA_DECODE_PIPELINE=$k timeout 60 $B/prefill_attention_bench --decode --batch $b --iters 20 512 2048 8192 32000 2>&1 | tee $R/decode_p${k}_b$b.txt | tail -5
  done
  SLUICE_CUDA_DECODE_PIPELINE=$k timeout 60 $B/prefill_attention_bench --decode --batch 1 --graph --iters 20 512 32000 2>&1 | tee $R/decode_p${k}_graph.txt | tail -3
done
echo "2. decode benches $(el)"
echo "3. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_LENGTHS="512 1800 7000 20000 32000" g7 long prefix | grep -E "sluice|transformers"
rm -rf $W/repo
echo "4. int4 model: $(wait_model $m4) $(el)"
CONCURRENCY="1 32" gq int4,sluice | grep -E "c=|Failed|unload"
SLUICE_CUDA_DECODE_PIPELINE=0 timeout 120 $T $B/cuda_kernels_test --gtest_filter='DecodeAttentionTest.*' > $R/tests_decode_p0.txt 2>&1
echo "5. decode tests, previous kernel rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_decode_p0.txt | head -4
echo "done $(el)"

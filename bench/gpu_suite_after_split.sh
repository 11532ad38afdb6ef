#!/usr/bin/env bash
# Session 15, call 4 (bench/RESULTS.md): after the CUDA kernels were cut into named phases
# (issue 21): every CUDA test, bf16 Qwen2-7B at 1 and 32 streams, the attention kernels'
# timings; GPTQ Int8 end to end (issue 17); fuzzers on the spare cores (issue 19).
source bench/gpu_call_setup.sh
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $W/int8/repo/qwen7b/1/model .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 &&
    touch $W/int8/repo/qwen7b/1/model/.complete ) &
writer=$!
timeout 300 $T $B/cuda_kernels_test > $R/tests_all.txt 2>&1
echo "1. all CUDA tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED|SKIPPED) |FAILED|tests ran" $R/tests_all.txt | head -12
timeout 30 $B/prefill_attention_bench --decode --batch 1 --iters 20 512 8192 32000 > $R/decode_b1.txt 2>&1; tail -4 $R/decode_b1.txt
timeout 30 $B/prefill_attention_bench --decode --batch 32 --iters 20 512 4096 > $R/decode_b32.txt 2>&1; tail -3 $R/decode_b32.txt
timeout 60 $B/prefill_attention_bench --iters 5 1800 7000 20000 > $R/prefill.txt 2>&1; tail -4 $R/prefill.txt
echo "2. attention benches $(el)"
echo "3. bf16 model: $(wait_model $m) $(el)"
CONCURRENCY="1 32" g7 sluice | grep -E "c=|Failed|load-to|unload"
rm -rf $m
wait_model $W/int8/repo/qwen7b/1/model > /dev/null 2>&1; echo "4. int8 model: $(tail -1 $R/int8_write.txt) $(el)"
CONCURRENCY="1 32" gq int8,sluice | grep -E "c=|Failed|bytes read|unload"
kill $writer 2>/dev/null; pkill -f make_qwen2_7b 2>/dev/null
echo "done $(el)"

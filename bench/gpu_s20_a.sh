#!/usr/bin/env bash
# Session 20, call A (bench/RESULTS.md "Session 20"): the wgmma prefill attention with fewer
# instructions a tile (one MUFU.EX2 an exponential, not four; the row maxima and sums in four
# independent partials; a cache slot's K/V sources in one 32x32->64-bit multiply-add), then
# what session 19's bench/gpu_next_session.sh held (folded in here), the most wanted first.
# 1. The attention kernel tests (every schedule, lengths, offsets, GQA ratios).
# 2. Prefill attention alone, the commit before (packed as bin/real/base_attention_bench)
#    against this one, schedules 1 (then the default), 3, 4 and 5, Qwen2-7B heads.
# 3. Then that script's phases (Int4 at 1 / 32 streams by SLUICE_CUDA_GPTQ_PDL_MAX_ROWS,
#    bf16 long prompts and 8 x 20,000 under max_num_batched_tokens_with_decodes, Int8 at many
#    streams) with what is left of LIMIT; the models are written in the background from the start.
source bench/gpu_call_setup.sh
write_models_bg int4 bf16 int8
timeout 150 $T $B/cuda_kernels_test --gtest_filter='AttentionKernelTest.*' > $R/tests_attention.txt 2>&1
echo "1. attention tests rc=$? $(el)"; grep -E "^\[  (PASSED|FAILED) +\]|FAILED" $R/tests_attention.txt | head -12
# the commit before's bench, packed beside the new binaries as bin/real/base_attention_bench
for v in base new; do
  bin=$B/prefill_attention_bench; [ $v = base ] && bin=$B/real/base_attention_bench
  timeout 100 $bin --iters 5 --no-cuda-cores --schedules 1,3,4,5 1800 7000 20000 32000 \
    > $R/attn_$v.txt 2>&1
  echo "2. attention $v rc=$? $(el)"; grep -vE "^\s*$" $R/attn_$v.txt | tail -14
done
$B/prefill_attention_bench --iters 5 --no-cuda-cores --cached 27904 4096 > $R/attn_cached.txt 2>&1
grep -vE "^\s*$" $R/attn_cached.txt | tail -3
echo "3. next-session phases $(el)"
echo "1. int4 model: $(wait_model $m4) $(el)"
AB_CONCURRENCY="1 32" AB_ROUNDS=1 \
  gq int4,ab,base,mma16:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=16,mma0:SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=0 |
  grep -E "c=|Failed"
echo "2. bf16 model: $(wait_model $m) $(el)"
MAX_BATCHED_TOKENS=4096 MAX_BATCHED_TOKENS_WITH_DECODES=0 LONG_STREAMS=0 \
  LONG_LENGTHS="7000 20000 32000" g7 long | grep -E "transformers|sluice |Failed" |
  sed "s/^/4096: /"
mkdir -p $R/b4096; mv $R/long_* $R/sluice_long.log $R/b4096/ 2>/dev/null
MAX_BATCHED_TOKENS=16384 MAX_BATCHED_TOKENS_WITH_DECODES=4096 SKIP_HF=1 \
  LONG_LENGTHS="7000 20000 32000" g7 long | grep -E "sluice |Failed" | sed "s/^/16384|4096: /"
AB_CONCURRENCY=32 AB_ROUNDS=1 g7 ab base nopdl:SLUICE_CUDA_PDL=0 | grep -E "c=|Failed"
g7 prefix | grep -E "sluice prefix|prefix_cache"
rm -rf $W/repo
echo "3. int8 model: $(wait_model $m8) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="1 32 64 256" gq int8,sluice | grep -E "c=|Failed|bytes read"
timeout 40 $B/gptq_product_bench 1 > $R/bench4.txt 2>&1; tail -6 $R/bench4.txt
timeout 40 $B/gptq_product_bench --bits 8 1 > $R/bench8.txt 2>&1; tail -6 $R/bench8.txt
echo "done $(el)"

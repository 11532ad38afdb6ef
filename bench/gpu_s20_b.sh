#!/usr/bin/env bash
# Session 20, call B (bench/RESULTS.md "Session 20"), after call A's attention figures and the
# GPTQ dependent-launch default (SLUICE_CUDA_GPTQ_PDL_MAX_ROWS=0):
# 1. bf16 TTFT at 1,800 / 7,000 / 20,000 / 32,000 tokens with the long phase's configuration
#    (16,384-token prefill steps, 4,096 with decodes) by prefill attention schedule: 1 (the
#    default) and 4 (warp-specialized, the fastest alone in call A); transformers in the same
#    run; 8 x 20,000 under schedule 4.
# 2. Int8 and bf16 at 32 and 256 streams, Int4 at 256, with the new GPTQ default.
# 3. Nsight Compute's stall reasons for the attention under schedules 1 and 4 (what is left).
source bench/gpu_call_setup.sh
m8=$W/int8/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_random.py $m .gpu/tok > $R/bf16_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 &&
    touch $m8/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m4 .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m4/.complete ) &
writer=$!
wait_for() { while [ ! -f $1/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done; }
wait_for $m; echo "bf16 model: $(tail -1 $R/bf16_write.txt) $(el)"
for s in 1 4; do
  hf=1; [ $s = 1 ] && hf=
  streams=0; [ $s = 4 ] && streams=8
  SLUICE_CUDA_PREFILL_WGMMA=$s SKIP_HF=$hf LONG_STREAMS=$streams \
    LONG_LENGTHS="1800 7000 20000 32000" g7 long | grep -E "transformers|sluice |Failed" | sed "s/^/sched $s: /"
  mkdir -p $R/sched$s; mv $R/long_* $R/sluice_long.log $R/sched$s/ 2>/dev/null
done
$B/prefill_attention_bench --iters 5 --no-cuda-cores --schedules 1,3,4 --cached 27904 4096 \
  > $R/attn_cached.txt 2>&1; grep -vE "^\s*$" $R/attn_cached.txt | tail -4
wait_for $m8; echo "int8 model: $(tail -1 $R/int8_write.txt) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="32 256" gq int8,sluice | grep -E "c=|Failed"
MAX_NUM_SEQS=256 CONCURRENCY="32 256" g7 sluice | grep -E "c=|Failed"
rm -rf $W/repo
wait_for $m4; echo "int4 model: $(tail -1 $R/int4_write.txt) $(el)"
MAX_NUM_SEQS=256 CONCURRENCY="256" gq int4,sluice | grep -E "c=|Failed"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
S="--section SpeedOfLight --section WarpStateStats --section SchedulerStats --section SourceCounters --print-details all"
for s in 1 4; do
  [ "$(left)" -gt 60 ] || break
  SLUICE_CUDA_PREFILL_WGMMA=$s timeout 60 $NCU --clock-control none $S -k regex:PrefillW --launch-count 1 \
    $B/prefill_attention_bench --iters 1 --no-cuda-cores 20000 > $R/ncu_attn_s$s.txt 2>&1
  echo "ncu schedule $s rc=$? $(el)"
  grep -E "Duration|Compute \(SM\) Throughput|Eligible Warps|Issue Slots|Warp Cycles Per Issued|Stall" $R/ncu_attn_s$s.txt | head -20
done
echo "done $(el)"

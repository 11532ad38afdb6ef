#!/usr/bin/env bash
# One device call for issue 17 (run from the repo root on the GPU machine, .gpu/ carried as for
# bench/gpu_pending_check.sh): the Int4 model written in the background while the GPTQ tests
# run (defaults, then SLUICE_CUDA_GPTQ_PARTIALS=1), then through the server: Int4's batch-1
# step profile, the A/B of the partials switch at batch 1, Int4 at 1 / 32 / 64 / 256 streams
# and a 2,000-token TTFT; then Int8 at 1 and 32 streams. Each step given what is left of
# LIMIT (default 585 s); PRE_FILTER: a gtest filter of CUDA tests to run first. Results in
# $OUT/res.tgz.
source bench/gpu_call_setup.sh
m=$W/int4/repo/qwen7b/1/model
m8=$W/int8/repo/qwen7b/1/model
( python3 bench/make_qwen2_7b_gptq_random.py $m .gpu/tok --bits 4 > $R/int4_write.txt 2>&1 && touch $m/.complete
  python3 bench/make_qwen2_7b_gptq_random.py $m8 .gpu/tok --bits 8 > $R/int8_write.txt 2>&1 && touch $m8/.complete ) &
writer=$!
python3 bench/copy_bandwidth.py 2>&1 | tee $R/bandwidth.txt | head -1
if [ -n "${PRE_FILTER:-}" ]; then  # tests to run first (a diagnosis of the day)
  timeout 90 $T $B/cuda_kernels_test --gtest_filter="$PRE_FILTER" > $R/tests_pre.txt 2>&1
  echo "tests $PRE_FILTER rc=$? $(el)"; grep -E "result|FAILED|Failure|Expected|Which is" $R/tests_pre.txt | head -24
fi
timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq.txt 2>&1
echo "gptq tests rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_gptq.txt | head -6
SLUICE_CUDA_GPTQ_PARTIALS=1 timeout 90 $T $B/cuda_kernels_test --gtest_filter='CudaGptq*' > $R/tests_gptq_partials.txt 2>&1
echo "gptq tests partials=1 rc=$? $(el)"; grep -E "^\[  (FAILED|PASSED) |FAILED" $R/tests_gptq_partials.txt | head -6
while [ ! -f $m/.complete ] && kill -0 $writer 2>/dev/null; do sleep 1; done
echo "int4 model: $(tail -1 $R/int4_write.txt) $(el)"
KEEP_MODEL=1 CONCURRENCY="1 32 64 256" MAX_NUM_SEQS=256 gq int4,profile,sluice
echo "ttft, 2,000-token prompt:"; KEEP_MODEL=1 ISL=2000 OSL=16 CONCURRENCY=1 gq int4,sluice
AB_ROUNDS=2 gq int4,ab,base,partials:SLUICE_CUDA_GPTQ_PARTIALS=1
wait $writer; CONCURRENCY="1 32" gq int8,sluice
echo "done $(el)"

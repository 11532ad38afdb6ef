#!/usr/bin/env bash
# Session 25, call G: call F again (bench/gpu_s25_f.sh) after the pairs' remote arrivals lost
# their cluster-scope release (a GPU-wide memory barrier before every arrival made the
# multicast GEMM twice as slow in call F). LIMIT=330 on an H100.
# Ran on a build with the multicast path (=3); level with =2, taken out afterwards.
source bench/gpu_call_setup.sh
write_models_bg int8 int4 bf16
echo "1. GPTQ tests"
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 gpu_tests 'CudaGptq*' 150 ||
  { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
for bits in 4 8; do
  for t in 2 3; do
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 SLUICE_CUDA_GPTQ_GEMM90_TMA=$t timeout 60 \
      $B/gptq_product_bench --bits $bits --iters 9 256 1024 2048 > $R/p_${bits}_$t.txt 2>&1
    echo "2. $bits bits TMA=$t"
    grep -E '^(q\|k\|v|o|gate\|up|down) ' $R/p_${bits}_$t.txt | awk '{print $1, $2, $3, $5, $(NF-1)}'
  done
done
echo "3. int8 model: $(wait_model $m8) $(el)"
for t in 2 3; do echo "TMA=$t"; SLUICE_CUDA_GPTQ_GEMM90_TMA=$t streamsq int8 256; done
ttft4() { SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"; }
echo "3. int4 model: $(wait_model $m4) $(el)"
for t in 2 3; do echo "TMA=$t"; SLUICE_CUDA_GPTQ_GEMM90_TMA=$t ttft4; done
echo "TMA=3, the GEMM to 2048 rows"
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=2048 ttft4
echo "3. bf16 model: $(wait_model $m) $(el)"
streams7 256
echo "done $(el)"

#!/usr/bin/env bash
# Session 25, call F: the Hopper GPTQ GEMM with x shared by pairs of column blocks (TMA
# multicast in 1 x 2 x 1 clusters, SLUICE_CUDA_GPTQ_GEMM90_TMA=3) against the producer alone
# (=2, the default): each 256 x 128 block reads its x tile from L2 every chunk, ~4.5-4.9 TB/s at
# 256-1,024 rows. LIMIT=420 on an H100.
# 1. The Hopper GEMM tests (every shape, every copy path with =3 among them; bit for bit with
#    cp.async), then every CudaGptq* test with =3.
# 2. The products at 256, 512, 1,024 and 2,048 rows (GEMM90_MAX_ROWS=2048), 4 and 8 bits, =2 / =3.
# 3. Int8 at 256 streams and Int4's TTFT at 2,000 tokens (the GEMM to 2,048 rows too), =2 / =3;
#    bf16 in the same call.
# Ran on a build with SLUICE_CUDA_GPTQ_GEMM90_TMA=3 (TMA multicast to pairs of column blocks);
# its remote arrivals then carried a cluster-scope release (twice as slow), call G reran it
# without; level with =2 there, the path was taken out again (RESULTS "Session 25").
source bench/gpu_call_setup.sh
write_models_bg int8 int4 bf16
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm90Every*' 90 || { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 gpu_tests 'CudaGptq*' 150 ||
  { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
for bits in 4 8; do
  for t in 2 3; do
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 SLUICE_CUDA_GPTQ_GEMM90_TMA=$t timeout 60 \
      $B/gptq_product_bench --bits $bits --iters 9 256 512 1024 2048 > $R/p_${bits}_$t.txt 2>&1
    echo "2. $bits bits TMA=$t"
    grep -E '^(q\|k\|v|o|gate\|up|down) ' $R/p_${bits}_$t.txt | awk '{print $1, $2, $3, $5, $(NF-1)}'
  done
done
echo "3. int8 model: $(wait_model $m8) $(el)"
for t in 2 3 2 3; do echo "TMA=$t"; SLUICE_CUDA_GPTQ_GEMM90_TMA=$t streamsq int8 256; done
ttft4() { SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"; }
echo "3. int4 model: $(wait_model $m4) $(el)"
for t in 2 3; do echo "TMA=$t"; SLUICE_CUDA_GPTQ_GEMM90_TMA=$t ttft4; done
echo "TMA=3, the GEMM to 2048 rows"
SLUICE_CUDA_GPTQ_GEMM90_TMA=3 SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS=2048 ttft4
for t in 2 3; do echo "TMA=$t"; SLUICE_CUDA_GPTQ_GEMM90_TMA=$t streamsq int4 256; done
echo "3. bf16 model: $(wait_model $m) $(el)"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000" g7 long | grep -E "tokens|Failed"
streams7 256
echo "done $(el)"

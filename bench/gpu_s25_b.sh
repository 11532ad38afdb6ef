#!/usr/bin/env bash
# Session 25, call B: the Hopper GPTQ GEMM's input slices added in thread block clusters
# (SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=1, ReduceInCluster in gptq_gemm90_parts.cuh) against fp32
# partials through the workspace and GemmReduce (=0). At 256 rows o, down and q|k|v run in 3-4
# slices and write, then read back, ~14 MB of partials each (o: 23.7 us against cuBLASLt's
# 13.4 on bf16). LIMIT=400 on an H100.
# 1. The GPTQ tests: the cluster test (both paths bit for bit), then every CudaGptq* with =1.
# 2. The products at 128, 256, 512 and 1,024 rows, 4 and 8 bits, =0 / =1; and at 512 and 1,024
#    rows with SLUICE_CUDA_GPTQ_GEMM90_TAIL=0 (the last wave's slices now cut with several row
#    blocks too: q|k|v at 1,024 rows, 4 x 36 blocks, was 2 waves for 1.09).
# 3. Int8 and Int4 at 256 streams, =0 / =1 alternated; bf16 in the same call.
source bench/gpu_call_setup.sh
write_models_bg int8 int4 bf16
echo "1. GPTQ tests"
gpu_tests 'CudaGptqTest.Gemm90Cluster*' 60 || { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=1 gpu_tests 'CudaGptq*' 200 ||
  { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
for bits in 4 8; do
  for c in 0 1; do
    SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=$c timeout 60 $B/gptq_product_bench --bits $bits --iters 9 \
      128 256 512 1024 > $R/p_${bits}_$c.txt 2>&1
    echo "2. $bits bits CLUSTER=$c"
    grep -E '^(q\|k\|v|o|gate\|up|down) ' $R/p_${bits}_$c.txt | awk '{print $1, $2, $3, $5}'
  done
done
SLUICE_CUDA_GPTQ_GEMM90_TAIL=0 timeout 60 $B/gptq_product_bench --iters 9 512 1024 > $R/p_notail.txt 2>&1
echo "2. 4 bits TAIL=0"
grep -E '^(q\|k\|v|o|gate\|up|down) ' $R/p_notail.txt | awk '{print $1, $2, $3, $5}'
echo "3. int8 model: $(wait_model $m8) $(el)"
for c in 0 1 0 1; do echo "CLUSTER=$c"; SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=$c streamsq int8 256; done
echo "3. int4 model: $(wait_model $m4) $(el)"
for c in 0 1; do echo "CLUSTER=$c"; SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=$c streamsq int4 256; done
echo "3. bf16 model: $(wait_model $m) $(el)"
streams7 256
echo "done $(el)"

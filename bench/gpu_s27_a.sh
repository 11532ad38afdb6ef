#!/usr/bin/env bash
# Session 27, call A. LIMIT=560 on an H100.
# The Hopper GEMM's chunk reordered: its wgmmas issued before the next chunk's dequantization
# (two chunks of wgmmas in flight while a warp dequantizes, not one), and the 64-row block's
# pipeline 8 stages deep where its shared memory holds them (5 before). Three device modules:
# base (bcc1bc7), mid (the reorder only), new (both); .gpu/ab.txz holds base's and mid's module
# and gptq_product_bench.
# 1. The GPTQ tests with the new kernel (every GEMM path, bit for bit against the float64
#    references), then the products A/B/C at 4 and 8 bits.
# 2. Nsight Compute on the 4-bit gate|up at 2,048 rows, base and new: where a chunk's ~1,470
#    clocks go (1,024 at the dense wgmma rate).
# 3. End to end: Int4's 2,000-token TTFT with the base and new modules; bf16's; Int4 and
#    Int8 at 32 streams, base and new.
source bench/gpu_call_setup.sh
mkdir -p /tmp/ab && tar xJf .gpu/ab.txz -C /tmp/ab
# A bin folder of another build: the new pack's binaries, the device module (the server's
# kernels) and gptq_product_bench (its own, linked in) replaced.
bin_with() {
  rm -rf /tmp/g_$1 && cp -r $G /tmp/g_$1 && cp /tmp/ab/$1/* /tmp/g_$1/bin/real/
  echo /tmp/g_$1/bin
}
Bbase=$(bin_with base); Bmid=$(bin_with mid)
bench() { LD_LIBRARY_PATH=$G/lib $1/real/gptq_product_bench "${@:2}" | grep -vE "^swiglu"; }
write_models_bg int4 bf16 int8
gpu_tests 'CudaGptqTest.*:CudaGptqModelTest.*' 120
for bits in 4 8; do
  for v in base mid new; do
    b=$B; [ $v = new ] || eval b=\$B$v
    echo "1. $v, $bits bits $(el)"; bench $b --bits $bits --iters 9 32 64 256 1024
  done
  for v in base new; do
    b=$B; [ $v = new ] || eval b=\$B$v
    echo "1. $v, $bits bits, 2,048 rows"
    SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 bench $b --bits $bits --iters 5 2048
  done
done
echo "1. round 2, 4 bits"
for v in new base; do
  b=$B; [ $v = new ] || eval b=\$B$v
  echo "1. $v $(el)"; bench $b --bits 4 --iters 9 32 64 256 1024
done
for v in base new; do
  b=$B; [ $v = new ] || eval b=\$B$v
  echo "2. ncu, $v $(el)"
  SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS=2048 LD_LIBRARY_PATH=$G/lib timeout 120 \
    ncu --clock-control none -k regex:GptqGemm90Kernel --launch-count 6 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SchedulerStats $b/real/gptq_product_bench --bits 4 --iters 1 --reps 1 2048 \
    > $R/ncu_$v.txt 2>&1
  echo "rc=$?"; grep -E "GptqGemm90Kernel|Duration|SM Busy|Issue Slots Busy|Warp Cycles Per Issued|Stall|Compute \(SM\) Throughput" \
    $R/ncu_$v.txt | head -40
done
echo "3. models: $(wait_model $m4) / $(wait_model $m) $(el)"
echo "3. int4 TTFT, new / base"; ttftq int4; GQ_BIN=$Bbase ttftq int4
ttft7
echo "3. int8 model: $(wait_model $m8) $(el)"
echo "3. int4, int8 32 streams, new / base"
streamsq int4 32; GQ_BIN=$Bbase streamsq int4 32
streamsq int8 32; GQ_BIN=$Bbase streamsq int8 32
echo "done $(el)"

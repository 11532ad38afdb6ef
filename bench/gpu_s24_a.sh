#!/usr/bin/env bash
# Session 24's first call. Two changes to the small-batch GPTQ product (gptq_mma.cu), against
# the build before them, then session 23's unrun gpu_next_session.sh as time allows.
# - 8-bit weights back into bf16 by a byte permute instead of Hopper's slow fp32-to-bf16
#   conversion (BytePair; default, exact either way).
# - SLUICE_CUDA_GPTQ_MMA_TILES=2: two 16-column tiles a warp at 9-32 rows, x read once for
#   both (at 32 rows every block re-reads the rows' x from L2: ~540 MB for gate|up against
#   its 68-136 MB of weights).
# Needs .gpu/base.txz: gptq_product_bench and libsluice_cuda_device.so of 3bad8d4, stripped
# (/work/notes/base_*_3bad8d4*). LIMIT=560.
# 1. Every GPTQ GPU test, with TILES=1 (default) and =2.
# 2. The products at 1-32 rows: 8 bits before / after; 4 and 8 bits TILES=1 / 2.
# 3. Through the server: Int8 at 1 and 32 streams before / after / TILES=2, bf16 and Int4 (both
#    TILES) at 32.
# 4. Every Hopper GEMM block shape with the tail at 64, 192, 256 and 512 rows (--variants).
# 5. TTFT at 2,000 and 7,000 tokens and one stream, bf16 and Int4.
source bench/gpu_call_setup.sh
write_models_bg int8 bf16 int4
mkdir -p /tmp/base && tar xJf .gpu/base.txz -C /tmp/base
cp -a $G /tmp/gb && cp /tmp/base/libsluice_cuda_device.so /tmp/gb/bin/real/
echo "1. GPTQ tests"
gpu_tests 'CudaGptq*' 200 || { echo "tests failed"; [ -n "${GO_ON:-}" ] || exit 0; }
cp $R/tests_gptq.txt $R/tests_gptq_tiles1.txt
SLUICE_CUDA_GPTQ_MMA_TILES=2 gpu_tests 'CudaGptqTest.*' 150 || { echo "TILES=2 failed"; exit 0; }
# prod TAG BIN BITS [ENV...]: one bench run at 1-32 rows, one line of us a product.
prod() {
  local tag=$1 bin=$2 bits=$3; shift 3
  env "$@" timeout 40 $bin --bits $bits --iters 9 1 8 16 32 > $R/p_$tag.txt 2>&1
  echo "2. $tag rc=$? $(el)"
  grep -E "^(q\|k\|v|o|gate\|up|down) +(1|8|16|32) " $R/p_$tag.txt |
    awk '{printf "%s %s %s | ", $1, $2, $5} END {print ""}'
}
for round in 1 2; do
  prod 8base$round /tmp/base/gptq_product_bench 8
  prod 8new$round $B/gptq_product_bench 8
  prod 8tiles$round $B/gptq_product_bench 8 SLUICE_CUDA_GPTQ_MMA_TILES=2
  prod 4new$round $B/gptq_product_bench 4
  prod 4tiles$round $B/gptq_product_bench 4 SLUICE_CUDA_GPTQ_MMA_TILES=2
done
echo "3. int8 model: $(wait_model $m8) $(el)"
for v in base new tiles; do
  echo "3. $v"; gb=$B; [ $v = base ] && gb=/tmp/gb/bin; t=1; [ $v = tiles ] && t=2
  SLUICE_CUDA_GPTQ_MMA_TILES=$t GQ_BIN=$gb KEEP_MODEL=1 MAX_NUM_SEQS=256 CONCURRENCY="1 32" \
    gq int8,sluice | grep -E "c=|Failed"
done
rm -rf $m8
echo "3b. bf16 model: $(wait_model $m) $(el)"
streams7 32
echo "3c. int4 model: $(wait_model $m4) $(el)"
for t in 1 2; do SLUICE_CUDA_GPTQ_MMA_TILES=$t streamsq int4 32; done
for bits in 4 8; do
  timeout 60 $B/gptq_product_bench --bits $bits --variants --iters 7 64 192 256 512 \
    > $R/variants_$bits.txt 2>&1
  echo "4. $bits bits rc=$? $(el)"
  grep -E "^(o |gate\|up |down )" $R/variants_$bits.txt | awk '{print $1, $2, $3, $5}' | head -100
done
echo "5. bf16"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" g7 long | grep -E "tokens|Failed"
CONCURRENCY="1" g7 sluice | grep -E "c=|Failed"
echo "5. int4"
SKIP_HF=1 LONG_STREAMS=0 LONG_LENGTHS="2000 7000" KEEP_MODEL=1 gq int4,long | grep -E "tokens|Failed"
KEEP_MODEL=1 CONCURRENCY="1" gq int4,sluice | grep -E "c=|Failed|bytes read"
echo "done $(el)"

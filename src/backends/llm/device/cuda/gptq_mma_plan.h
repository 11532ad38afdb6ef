#pragma once
// How many 16-column tiles a warp of the small-batch GPTQ product (gptq_mma.cu) sums. Plain
// C++, a pure function of the product and the device's SM count, so that the choice is
// unit-tested on a CPU (gptq_mma_plan_test.cc).
//
// The product's blocks each own their tiles' columns and read the rows' x for them from L2:
// at 32 rows gate|up's 2,368 tiles read ~540 MB of x against 68 MB of 4-bit weights. A warp
// that sums two adjacent tiles loads x's fragments once for both and halves those reads, but
// keeps twice the accumulators, so it holds half the weight loads in flight and the launch has
// half the blocks. On an H100 (bench/RESULTS.md, session 24) two tiles made every Qwen2-7B
// product faster at 16 and 32 rows at 4 bits (gate|up 101 -> 82 us at 32 rows), and at 8 bits
// those whose grid of pairs still covers the SMs (gate|up, q|k|v), while 8-bit o and down (112
// blocks on 132 SMs) took 4-17 % longer.

namespace sluice::llm::cuda::gptq {

// SLUICE_CUDA_GPTQ_MMA_TILES (cuda_tuning.h): 0 the rule below, 1 one tile, 2 two wherever
// the kernel has them.
struct MmaTilesProblem {
  int bits = 4;
  bool load_order = true;    // the layout's load order (two tiles exist only there)
  int rows = 1;              // this launch's (1 to 64)
  bool widths_of_32 = true;  // every part's width a multiple of 32: a block's tiles in one part
  int pair_blocks = 0;       // the launch's blocks with two tiles a warp
  int sms = 132;
};

constexpr int MmaTiles(const MmaTilesProblem& p, int knob) {
  const bool can = p.load_order && p.rows > 8 && p.rows <= 32 && p.widths_of_32;
  if (knob == 1 || !can) return 1;
  if (knob == 2) return 2;
  return p.bits == 4 || p.pair_blocks >= p.sms ? 2 : 1;
}

}  // namespace sluice::llm::cuda::gptq

#pragma once
// How the GPTQ GEMM of Hopper (gptq_gemm90.cu) cuts a product: the block shape (rows x output
// columns) and the input slices (split-k). Plain C++, a pure function of the product, the
// device's SM count and the kernels' occupancy, so that the choice is unit-tested on a CPU
// (gptq_gemm90_plan_test.cc); with the index arithmetic of the kernel's x copies, for the same
// reason (a row copied twice or never only shows as wrong numbers on the GPU).
//
// Shapes: kN rows (wgmma's N: 64, 128, 192 or 256) x `tiles` 16-column tiles (8: two
// warpgroups, 128 columns; 12: three warpgroups, 192 columns, only where the accumulators
// leave room in the 168 registers a thread of 384 gets). SLUICE_CUDA_GPTQ_GEMM90_SHAPES=2 (the
// default) takes the fewest rows of a shape that hold the product's (192 or 256 past them) x
// 128 columns, or, without the producing warpgroup (Gemm90Problem::producer), 192 columns in
// 128-row blocks for a product of kGemm90WideWeights weights or more (gate|up and down, not
// q|k|v or o: bench/RESULTS.md, sessions 18, 19 and 23), its slices by
// the model below; 0 keeps the original choice between 128 x 128 and 256 x 128 and its model;
// 1 picks from every shape with the model below; TILE_ROWS / TILE_COLS / SPLITS force a
// dimension.
//
// The model of SHAPES=1 and 2, in SM clocks: a chunk (64 inputs) of a block costs its largest
// resource term, wgmma work at kTcFlopsPerClock, the warps' dequantization issue (a warp a
// tile, 4 schedulers), x's bytes from L2 and the weights' from HBM (each SM's share of the
// device's bandwidth), times the blocks an SM holds, plus a fixed latency (barrier, wgmma
// wait) that co-resident blocks hide; a grid takes its waves times its slowest block; slices
// add their fp32 partials' bytes (written, then read back) and the reduction's launch. The
// constants are estimates for an H100 SXM, set so that a 128 x 128 block's chunk costs the
// ~1350 clocks it takes on gate|up (half the dense wgmma rate + 300); that one figure cannot
// tell a slow wgmma from a long fixed latency (with the full rate, 512 + ~840), and only the
// first makes narrow tiles pay: A/B on the GPU before trusting a choice.

#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define SLUICE_GEMM90_HD __host__ __device__
#else
#define SLUICE_GEMM90_HD
#endif

namespace sluice::llm::cuda::gptq {

struct Gemm90Shape {
  int rows;   // kN
  int tiles;  // 16-column tiles: one a warp
};
// Every shape gptq_gemm90.cu instantiates, in the order in which the model prefers them on a
// tie (fewer rows first: less tensor work wasted on padding rows). The first two are the
// default's (SHAPES=0).
inline constexpr Gemm90Shape kGemm90Shapes[] = {{128, 8}, {256, 8},  {64, 8},
                                                {64, 12}, {128, 12}, {192, 8}};
inline constexpr int kGemm90ShapeCount = 6;
inline constexpr int kGemm90DefaultShapes = 2;
inline constexpr int kGemm90Chunk = 64;                          // inputs a pipeline stage
inline constexpr int kGemm90MaxSplits = 8;                       // kGptqGemmMaxSplits
inline constexpr int64_t kGemm90WideWeights = int64_t{1} << 25;  // SHAPES=2's 192 columns

struct Gemm90Problem {
  int in = 0, bits = 4;  // the layout's inputs and bits
  int rows = 0, out = 0;
  size_t floats = 0;  // fp32 partials the workspace holds (0: never sliced)
  int sms = 132;
  int per_sm[kGemm90ShapeCount] = {1, 1, 1, 1, 1, 1};  // blocks of each shape an SM holds
  bool producer = false;  // 8-tile blocks of 128+ rows fill their stages from a producer
};

// SLUICE_CUDA_GPTQ_GEMM90_{SHAPES, TILE_ROWS, TILE_COLS, SPLITS} (cuda_tuning.h); 0: modelled.
struct Gemm90Knobs {
  int shapes = 0;
  int tile_rows = 0;
  int tile_cols = 0;
  int splits = 0;
};

struct Gemm90Plan {
  int shape = 0;   // index into kGemm90Shapes
  int splits = 1;  // input slices (1: whole, bf16 y written by the GEMM)
  double time = 0;
};

// The shape and slices for `p`. Forced dimensions restrict the candidates (a dimension not
// forced keeps SHAPES' choice: 128 columns with 0, the 192-column rule above with 2); a
// TILE_COLS that no shape of the forced rows has (192 columns at 192 or 256 rows) is ignored.
// Forced splits are cut to what the workspace holds and to one chunk a slice at least (slices
// past the inputs' end would add zeros). Modelled splits are 1 to kGemm90MaxSplits, each slice
// 4 or more chunks, none empty.
Gemm90Plan PlanGemm90(const Gemm90Problem& p, const Gemm90Knobs& k);

// The last wave's columns cut in input slices (SLUICE_CUDA_GPTQ_GEMM90_TAIL): a whole-input
// launch (plan splits 1) whose blocks (row blocks x column blocks) fill `slots` (SMs x blocks
// an SM holds) W >= 1 times and leave a last wave of at most slots / 2 blocks runs its first
// column blocks whole and the last `blocks` column blocks (with all their row blocks: those
// the last wave holds) cut in `splits` slices (up to slots / the blocks cut, the chunks and
// what `floats` of fp32 partials hold: splits x rows x the tail's columns): W waves plus one of
// 1 / splits of a block's time and the partials' reduction, instead of W + 1 (gate|up at 256
// rows on 132 SMs: 296 blocks, 2.24 waves; q|k|v at 1,024 rows: 4 x 36 blocks, 1.09 waves).
// {0, 1}: no tail.
struct Gemm90Tail {
  int blocks = 0;  // the last column blocks, cut
  int splits = 1;
};
Gemm90Tail PlanGemm90Tail(int slots, int row_blocks, int col_blocks, int chunks, int rows,
                          int block_cols, int out, size_t floats);
// A forced tail (GptqGemm90Variant::tail_blocks / tail_splits) of the same launch: at most all
// column blocks but the first, the slices cut as above; {0, 1} when nothing is left to cut.
Gemm90Tail ForcedGemm90Tail(int blocks, int splits, int col_blocks, int chunks, int rows,
                            int block_cols, int out, size_t floats);

// The kernel's x copies: a block of `threads` threads copies a chunk's [kN x 64] x tile in
// 16-byte units, thread tid unit tid % 8 of rows tid / 8 + u (threads / 8) for u < XPasses.
SLUICE_GEMM90_HD constexpr int XRowsPerPass(int threads) {
  return threads / 8;
}
SLUICE_GEMM90_HD constexpr int XPasses(int rows, int threads) {
  return (rows + XRowsPerPass(threads) - 1) / XRowsPerPass(threads);
}
// How many of a thread's passes (first row r, `per_pass` rows a pass) copy rows below
// `limit` (negative limits: none), at most `passes`.
SLUICE_GEMM90_HD constexpr int XPassesBelow(int limit, int r, int per_pass, int passes) {
  const int n = (limit - r + per_pass - 1) / per_pass;  // truncation: <= 0 when limit <= r
  return n < 0 ? 0 : n > passes ? passes : n;
}

}  // namespace sluice::llm::cuda::gptq

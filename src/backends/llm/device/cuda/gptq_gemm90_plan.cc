#include "backends/llm/device/cuda/gptq_gemm90_plan.h"

#include <algorithm>

namespace sluice::llm::cuda::gptq {
namespace {

// SHAPES=0's model, in a block's FLOPs on one SM: a grid of blocks (one an SM) takes its
// waves times a block's share of the work, the larger of its wgmma FLOPs (x kSmallTileCost for
// 128-row tiles, whose fixed costs a chunk are spread over half the FLOPs) and its weight bytes
// at the machine balance; slices add their partials' bytes spread over every SM.
constexpr double kFlopsPerByte = 220;   // ~ wgmma FLOP/s over HBM bytes/s on an H100
constexpr double kSmallTileCost = 1.1;  // a guess (TILE_ROWS A/B)

double DefaultModel(const Gemm90Problem& p, const Gemm90Shape& sh, int s) {
  const int64_t blocks = static_cast<int64_t>((p.rows + sh.rows - 1) / sh.rows) *
                         ((p.out / 16 + sh.tiles - 1) / sh.tiles);
  const double columns = 16.0 * sh.tiles;
  const double block =
      std::max(2.0 * sh.rows * columns * p.in * (sh.rows == 128 ? kSmallTileCost : 1.0),
               columns * p.in * p.bits / 8 * kFlopsPerByte);
  const double waves = static_cast<double>((blocks * s + p.sms - 1) / p.sms);
  const double partials = s > 1 ? 8.0 * s * p.rows * p.out * kFlopsPerByte / p.sms : 0.0;
  return waves * block / s + partials;
}

// SHAPES=1 and 2's model (the header's), in SM clocks.
constexpr double kTcFlopsPerClock = 2048;   // register-A wgmma, an SM (dense peak: 4096)
constexpr double kDequantClocks = 150;      // a warp's issue slots to dequantize a chunk's tile
constexpr double kFixedClocks = 300;        // a chunk's barrier and wgmma wait
constexpr double kL2BytesPerClock = 3200;   // the device's, ~5.6 TB/s at 1.75 GHz
constexpr double kHbmBytesPerClock = 1900;  // ~3.35 TB/s
constexpr double kReduceClocks = 2000;      // the reduction's launch and tail

double WaveModel(const Gemm90Problem& p, int shape, int s) {
  const Gemm90Shape& sh = kGemm90Shapes[shape];
  const int per_sm = std::max(1, p.per_sm[shape]);
  const int64_t blocks = static_cast<int64_t>((p.rows + sh.rows - 1) / sh.rows) *
                         ((p.out / 16 + sh.tiles - 1) / sh.tiles);
  const double columns = 16.0 * sh.tiles;
  const double mma = 2.0 * sh.rows * columns * kGemm90Chunk / kTcFlopsPerClock;
  const double alu = kDequantClocks * sh.tiles / 4;
  const double x = 2.0 * std::min(sh.rows, p.rows) * kGemm90Chunk * p.sms / kL2BytesPerClock;
  const double w = columns * kGemm90Chunk * p.bits / 8 * p.sms / kHbmBytesPerClock;
  const double busy = std::max({mma, alu, x, w});
  const double chunk = std::max(per_sm * busy, busy + kFixedClocks);
  const int chunks = p.in / kGemm90Chunk;
  const double block = chunk * ((chunks + s - 1) / s);
  const int64_t slots = static_cast<int64_t>(p.sms) * per_sm;
  const double waves = static_cast<double>((blocks * s + slots - 1) / slots);
  const double partials = s > 1 ? 8.0 * s * p.rows * p.out / kHbmBytesPerClock + kReduceClocks : 0;
  return waves * block + partials;
}

double Model(const Gemm90Problem& p, const Gemm90Knobs& k, int shape, int s) {
  return k.shapes == 0 ? DefaultModel(p, kGemm90Shapes[shape], s) : WaveModel(p, shape, s);
}

// The fewest rows of a shape that hold `rows` (SHAPES=2); past 256, the 192- or 256-row
// blocks that pad the rows less (256 on a tie: fewer blocks).
int FewestRows(int rows) {
  if (rows <= 256) return rows <= 64 ? 64 : rows <= 128 ? 128 : rows <= 192 ? 192 : 256;
  const int pad192 = (rows + 191) / 192 * 192, pad256 = (rows + 255) / 256 * 256;
  return pad192 < pad256 ? 192 : 256;
}

// SHAPES=2's columns: 192 (12 tiles) for a large product (kWideWeights weights or more) in
// 128-row blocks filled by cp.async, 128 otherwise (with a producing warpgroup the 128 x 128
// block is the faster one: 102 / 50 us against 112 / 58 for gate|up / down at 128 rows,
// bench/RESULTS.md session 23).
int FewestRowsTiles(const Gemm90Problem& p, int block_rows) {
  const bool large = static_cast<int64_t>(p.in) * p.out >= kGemm90WideWeights;
  return block_rows == 128 && large && !p.producer ? 12 : 8;
}

// A dimension not forced: with SHAPES=0 the default's (128 or 256 rows, 128 columns), with 1
// any, with 2 FewestRows and FewestRowsTiles.
bool Candidate(const Gemm90Problem& p, const Gemm90Knobs& k, const Gemm90Shape& sh,
               bool cols_forced) {
  bool rows = k.shapes == 1 || (k.shapes == 0 && (sh.rows == 128 || sh.rows == 256)) ||
              (k.shapes == 2 && sh.rows == FewestRows(p.rows));
  if (k.tile_rows != 0) rows = sh.rows == k.tile_rows;
  const int tiles = k.shapes == 2 ? FewestRowsTiles(p, sh.rows) : 8;
  const bool cols = cols_forced ? sh.tiles * 16 == k.tile_cols : k.shapes == 1 || sh.tiles == tiles;
  return rows && cols;
}

// The slices of shape `shape`: forced, or the fewest with the least modelled time.
Gemm90Plan Slices(const Gemm90Problem& p, const Gemm90Knobs& k, int shape) {
  const int chunks = p.in / kGemm90Chunk;
  auto fits = [&](int s) { return static_cast<size_t>(s) * p.rows * p.out <= p.floats; };
  if (k.splits != 0) {
    int s = std::max(1, std::min({k.splits, kGemm90MaxSplits, chunks}));
    while (s > 1 && !fits(s)) --s;
    return {shape, s, Model(p, k, shape, s)};
  }
  Gemm90Plan best{shape, 1, Model(p, k, shape, 1)};
  for (int s = 2; s <= kGemm90MaxSplits; ++s) {
    if (chunks / s < 4 || !fits(s)) break;
    const bool none_empty = (s - 1) * ((chunks + s - 1) / s) < chunks;  // the kernel's slices
    const double t = Model(p, k, shape, s);
    if (none_empty && t < best.time) best = {shape, s, t};
  }
  return best;
}

}  // namespace

Gemm90Plan PlanGemm90(const Gemm90Problem& p, const Gemm90Knobs& k) {
  bool cols_forced = k.tile_cols != 0;
  if (cols_forced) {
    bool any = false;
    for (const Gemm90Shape& sh : kGemm90Shapes) {
      any = any || ((k.tile_rows == 0 || sh.rows == k.tile_rows) && sh.tiles * 16 == k.tile_cols);
    }
    cols_forced = any;
  }
  bool found = false;
  Gemm90Plan best;
  for (int i = 0; i < kGemm90ShapeCount; ++i) {
    if (!Candidate(p, k, kGemm90Shapes[i], cols_forced)) continue;
    const Gemm90Plan plan = Slices(p, k, i);
    // SHAPES=0 keeps its tie rule: 256 rows where the two are modelled equal.
    const bool better = k.shapes == 0 ? plan.time <= best.time : plan.time < best.time;
    if (!found || better) best = plan;
    found = true;
  }
  return best;  // a candidate always exists: every forced row count has a shape of 8 tiles, and
                // SHAPES=2's 12 tiles come with 128 rows, which has them
}

namespace {
// `splits` cut down to what `floats` of fp32 partials of `rows` x `width` columns hold.
int TailSplitsThatFit(int splits, int rows, int64_t width, size_t floats) {
  while (splits >= 2 && static_cast<size_t>(splits) * rows * width > floats) --splits;
  return splits;
}
}  // namespace

Gemm90Tail ForcedGemm90Tail(int blocks, int splits, int col_blocks, int chunks, int rows,
                            int block_cols, int out, size_t floats) {
  Gemm90Tail t{std::min(blocks, col_blocks - 1), std::min({splits, kGemm90MaxSplits, chunks})};
  const int64_t width = out - int64_t{col_blocks - t.blocks} * block_cols;
  t.splits = TailSplitsThatFit(t.splits, rows, width, floats);
  return t.blocks >= 1 && t.splits >= 2 ? t : Gemm90Tail{};
}

Gemm90Tail PlanGemm90Tail(int slots, int row_blocks, int col_blocks, int chunks, int rows,
                          int block_cols, int out, size_t floats) {
  const int64_t total = int64_t{row_blocks} * col_blocks;
  if (slots < 2 || row_blocks < 1 || total <= slots) return {};
  const int64_t last = total % slots;
  // The grid runs its row blocks fastest: the last wave holds the last column blocks, each
  // with every row block (the first of them perhaps only with its last row blocks: cut whole).
  const int blocks = static_cast<int>((last + row_blocks - 1) / row_blocks);
  const int64_t cut = int64_t{blocks} * row_blocks;
  if (last == 0 || 2 * cut > slots || blocks >= col_blocks) return {};
  const int64_t width = out - int64_t{col_blocks - blocks} * block_cols;  // the tail's columns
  const int splits = TailSplitsThatFit(
      std::min({static_cast<int>(slots / cut), kGemm90MaxSplits, chunks}), rows, width, floats);
  if (splits < 2) return {};
  return {blocks, splits};
}

}  // namespace sluice::llm::cuda::gptq

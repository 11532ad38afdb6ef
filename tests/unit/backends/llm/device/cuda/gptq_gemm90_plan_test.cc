// The Hopper GPTQ GEMM's launch plan (gptq_gemm90_plan.h) on Qwen2-7B's products at decode
// batches: the default keeps its two shapes, SHAPES=1 takes the narrow tile at 64 rows and
// fewer, forced dimensions are honoured or ignored as documented, slices stay within the
// workspace and the inputs; and the x copies' passes cover each row of a tile exactly once.

#include "backends/llm/device/cuda/gptq_gemm90_plan.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <tuple>
#include <utility>
#include <vector>

namespace sluice::llm::cuda::gptq {
namespace {

struct Product {
  const char* name;
  int in, out;
};
// Qwen2-7B: q|k|v, o, gate|up, down.
constexpr Product kQwen2[] = {
    {"q|k|v", 3584, 4608}, {"o", 3584, 3584}, {"gate|up", 3584, 37888}, {"down", 18944, 3584}};

// The device's workspace: 2 x SMs blocks of 64 x 256 outputs (GptqGemmWorkspaceBytes).
constexpr size_t kWorkspaceFloats = size_t{2} * 132 * 64 * 256;

Gemm90Problem ProblemOf(const Product& p, int rows, int bits = 4) {
  Gemm90Problem q;
  q.in = p.in;
  q.bits = bits;
  q.rows = rows;
  q.out = p.out;
  q.floats = kWorkspaceFloats;
  q.sms = 132;
  return q;
}

const Gemm90Shape& ShapeOf(const Gemm90Plan& plan) {
  return kGemm90Shapes[plan.shape];
}

TEST(Gemm90PlanTest, DefaultKeepsTheTwoOriginalShapes) {
  for (const Product& p : kQwen2) {
    for (int rows : {33, 64, 65, 100, 128, 129, 200, 256}) {
      for (int bits : {4, 8}) {
        const Gemm90Plan plan = PlanGemm90(ProblemOf(p, rows, bits), Gemm90Knobs{});
        ASSERT_LT(plan.shape, kGemm90DefaultShapes) << p.name << " rows " << rows;
        EXPECT_EQ(ShapeOf(plan).tiles, 8);
        EXPECT_TRUE(ShapeOf(plan).rows == 128 || ShapeOf(plan).rows == 256);
      }
    }
  }
  // The original model's choices for gate|up: 128 rows a block at 64 rows, and at 256 rows too
  // (592 blocks in 5 waves at 1.1 x half the FLOPs, against 296 blocks in 3 waves).
  EXPECT_EQ(ShapeOf(PlanGemm90(ProblemOf(kQwen2[2], 64), {})).rows, 128);
  EXPECT_EQ(ShapeOf(PlanGemm90(ProblemOf(kQwen2[2], 256), {})).rows, 128);
  EXPECT_EQ(PlanGemm90(ProblemOf(kQwen2[2], 64), {}).splits, 1);
  EXPECT_GT(PlanGemm90(ProblemOf(kQwen2[3], 64), {}).splits, 1);  // down: 28 column blocks
}

TEST(Gemm90PlanTest, AllShapesTakeTheNarrowTileAtFewRows) {
  Gemm90Knobs k;
  k.shapes = 1;
  for (const Product& p : kQwen2) {
    for (int rows : {33, 48, 64}) {
      const Gemm90Plan plan = PlanGemm90(ProblemOf(p, rows), k);
      EXPECT_EQ(ShapeOf(plan).rows, 64) << p.name << " rows " << rows;
    }
    for (int rows : {65, 100, 128, 200, 256}) {  // a shape of the model's choice, any slices
      const Gemm90Plan plan = PlanGemm90(ProblemOf(p, rows), k);
      EXPECT_TRUE(plan.shape >= 0 && plan.shape < kGemm90ShapeCount && plan.time > 0);
    }
  }
}

TEST(Gemm90PlanTest, FewestRowsRule) {
  Gemm90Knobs k;
  k.shapes = 2;
  for (const Product& p : kQwen2) {
    for (const auto& [rows, tile] : std::vector<std::pair<int, int>>{{33, 64},
                                                                     {64, 64},
                                                                     {65, 128},
                                                                     {128, 128},
                                                                     {129, 192},
                                                                     {192, 192},
                                                                     {193, 256},
                                                                     {256, 256},
                                                                     {300, 192},
                                                                     {384, 192},
                                                                     {512, 256},
                                                                     {768, 256},
                                                                     {1000, 256}}) {
      const Gemm90Plan plan = PlanGemm90(ProblemOf(p, rows), k);
      EXPECT_EQ(ShapeOf(plan).rows, tile) << p.name << " rows " << rows;
      // 192 columns in 128-row blocks for gate|up and down (2^25 weights or more), not for
      // q|k|v and o.
      const bool large = int64_t{p.in} * p.out >= kGemm90WideWeights;
      EXPECT_EQ(ShapeOf(plan).tiles, tile == 128 && large ? 12 : 8) << p.name << " rows " << rows;
    }
  }
  EXPECT_GE(int64_t{kQwen2[2].in} * kQwen2[2].out, kGemm90WideWeights);  // gate|up
  EXPECT_GE(int64_t{kQwen2[3].in} * kQwen2[3].out, kGemm90WideWeights);  // down
  EXPECT_LT(int64_t{kQwen2[0].in} * kQwen2[0].out, kGemm90WideWeights);  // q|k|v
  // Forced rows keep the rule's columns; forced columns win over it.
  Gemm90Knobs rows128 = k;
  rows128.tile_rows = 128;
  EXPECT_EQ(ShapeOf(PlanGemm90(ProblemOf(kQwen2[2], 40), rows128)).tiles, 12);
  Gemm90Knobs cols128 = k;
  cols128.tile_cols = 128;
  EXPECT_EQ(ShapeOf(PlanGemm90(ProblemOf(kQwen2[2], 100), cols128)).tiles, 8);
}

// With the producing warpgroup (the 8-tile blocks of 128 rows and more), the 128 x 128 block
// for every product at 65-128 rows: faster than 128 x 192 with cp.async (session 23).
TEST(Gemm90PlanTest, ProducerTakesTheNarrowBlockAt128Rows) {
  Gemm90Knobs k;
  k.shapes = 2;
  for (const Product& prod : kQwen2) {
    for (int rows : {65, 100, 128}) {
      Gemm90Problem p = ProblemOf(prod, rows);
      p.producer = true;
      const Gemm90Shape& sh = ShapeOf(PlanGemm90(p, k));
      EXPECT_EQ(sh.rows, 128) << prod.name << " rows " << rows;
      EXPECT_EQ(sh.tiles, 8) << prod.name << " rows " << rows;
    }
  }
}

TEST(Gemm90PlanTest, ForcedDimensionsAreHonoured) {
  const Gemm90Problem p = ProblemOf(kQwen2[2], 100);
  for (int shapes : {0, 1, 2}) {
    for (int rows : {64, 128, 192, 256}) {
      Gemm90Knobs k;
      k.shapes = shapes;
      k.tile_rows = rows;
      const Gemm90Plan plan = PlanGemm90(p, k);
      EXPECT_EQ(ShapeOf(plan).rows, rows);
      if (shapes != 1) {  // SHAPES' columns (gate|up: 192 in SHAPES=2's 128-row blocks)
        EXPECT_EQ(ShapeOf(plan).tiles, shapes == 2 && rows == 128 ? 12 : 8);
      }
      k.tile_cols = 192;
      const Gemm90Shape& wide = ShapeOf(PlanGemm90(p, k));
      EXPECT_EQ(wide.rows, rows);
      EXPECT_EQ(wide.tiles, rows <= 128 ? 12 : 8) << rows;  // no 192-column shape past 128
      k.tile_cols = 128;
      EXPECT_EQ(ShapeOf(PlanGemm90(p, k)).tiles, 8);
    }
    Gemm90Knobs cols;
    cols.shapes = shapes;
    cols.tile_cols = 192;
    EXPECT_EQ(ShapeOf(PlanGemm90(p, cols)).tiles, 12);
  }
}

TEST(Gemm90PlanTest, SlicesStayInTheWorkspaceAndTheInputs) {
  for (int shapes : {0, 1, 2}) {
    for (const Product& prod : kQwen2) {
      for (int rows : {33, 64, 65, 128, 200, 256}) {
        Gemm90Problem p = ProblemOf(prod, rows);
        Gemm90Knobs k;
        k.shapes = shapes;
        const int chunks = prod.in / kGemm90Chunk;
        const Gemm90Plan plan = PlanGemm90(p, k);
        ASSERT_GE(plan.splits, 1);
        ASSERT_LE(plan.splits, kGemm90MaxSplits);
        if (plan.splits > 1) {
          EXPECT_LE(static_cast<size_t>(plan.splits) * rows * prod.out, p.floats);
          EXPECT_GE(chunks / plan.splits, 4);
          const int per_slice = (chunks + plan.splits - 1) / plan.splits;
          EXPECT_LT((plan.splits - 1) * per_slice, chunks) << "an empty slice";
        }
        for (int forced = 1; forced <= kGemm90MaxSplits; ++forced) {
          k.splits = forced;
          const Gemm90Plan f = PlanGemm90(p, k);
          EXPECT_GE(f.splits, 1);
          EXPECT_LE(f.splits, forced);
          EXPECT_TRUE(f.splits == 1 || static_cast<size_t>(f.splits) * rows * prod.out <= p.floats);
          if (static_cast<size_t>(forced) * rows * prod.out <= p.floats) {
            EXPECT_EQ(f.splits, forced);
          }
        }
        p.floats = 0;  // no workspace: never sliced
        k.splits = 0;
        EXPECT_EQ(PlanGemm90(p, k).splits, 1);
        k.splits = 4;
        EXPECT_EQ(PlanGemm90(p, k).splits, 1);
      }
    }
  }
}

// Every row below min(limit, kN) once, none past: for each block size and shape.
TEST(Gemm90PlanTest, XCopiesCoverEachRowOnce) {
  for (int threads : {256, 384}) {
    for (int kn : {64, 128, 192, 256}) {
      const int per_pass = XRowsPerPass(threads), passes = XPasses(kn, threads);
      EXPECT_GE(per_pass * passes, kn);
      for (int limit = -40; limit <= kn + 40; ++limit) {
        std::vector<int> copies(kn + per_pass * passes, 0);
        for (int tid = 0; tid < threads; tid += 8) {  // unit 0 of each row: q does not matter
          const int r = tid / 8;
          const int in_tile = XPassesBelow(kn, r, per_pass, passes);
          const int valid = XPassesBelow(limit, r, per_pass, in_tile);
          for (int u = 0; u < valid; ++u) ++copies[r + per_pass * u];
          for (int u = 0; u < in_tile; ++u) EXPECT_LT(r + per_pass * u, kn);
        }
        for (int row = 0; row < static_cast<int>(copies.size()); ++row) {
          const bool wanted = row < kn && row < limit;
          EXPECT_EQ(copies[row], wanted ? 1 : 0)
              << "threads " << threads << " kN " << kn << " limit " << limit << " row " << row;
        }
      }
    }
  }
}

// The last wave's columns cut in slices: gate|up at 256 rows on 132 SMs (296 blocks of 128
// columns: 2 waves and 32 blocks) cuts its last 32 blocks in 4; nothing where the last wave
// is full, more than half full, the only one, or the grid has more than one row block; the
// slices stay within the workspace and the inputs.
TEST(Gemm90PlanTest, LastWaveCutInSlices) {
  const int chunks = 3584 / kGemm90Chunk;
  Gemm90Tail t = PlanGemm90Tail(132, 1, 296, chunks, 256, 128, 37888, kWorkspaceFloats);
  EXPECT_EQ(t.blocks, 32);
  EXPECT_EQ(t.splits, 4);
  EXPECT_LE(size_t{4} * 256 * (37888 - 264 * 128), kWorkspaceFloats);
  // 128 rows in 192-column blocks: 198 blocks, one wave and 66 (half of one): 2 slices.
  t = PlanGemm90Tail(132, 1, 198, chunks, 128, 192, 37888, kWorkspaceFloats);
  EXPECT_EQ(t.blocks, 66);
  EXPECT_EQ(t.splits, 2);
  // Several row blocks: the last wave's column blocks with every row block. q|k|v at 1,024
  // rows (4 x 36 blocks of 256 x 128: 12 past one wave) runs its last 3 column blocks' 12
  // blocks in 8 slices; 2 x 148 leaves 32 (16 column blocks); 3 x 45 leaves 3, the last column
  // block; 5 x 27 leaves 3 of the last column block's 5 row blocks: all 5 cut.
  for (const auto& [row_blocks, cols, blocks, splits] : std::vector<std::tuple<int, int, int, int>>{
           {4, 36, 3, 8}, {2, 148, 16, 4}, {3, 45, 1, 8}, {5, 27, 1, 8}}) {
    t = PlanGemm90Tail(132, row_blocks, cols, chunks, 64 * row_blocks, 128, 128 * cols,
                       kWorkspaceFloats);
    EXPECT_EQ(t.blocks, blocks) << row_blocks << " x " << cols;
    EXPECT_EQ(t.splits, splits) << row_blocks << " x " << cols;
  }
  // A full last wave, one more than half full (one and three row blocks), a single wave.
  for (const auto& [slots, rows_blocks, cols] : std::vector<std::tuple<int, int, int>>{
           {132, 1, 264}, {132, 1, 199}, {132, 3, 67}, {132, 1, 100}}) {
    t = PlanGemm90Tail(slots, rows_blocks, cols, chunks, 256, 128, 37888, kWorkspaceFloats);
    EXPECT_EQ(t.blocks, 0) << cols;
    EXPECT_EQ(t.splits, 1) << cols;
  }
  // Slices: at most kGemm90MaxSplits, the chunks, and what the workspace holds.
  t = PlanGemm90Tail(132, 1, 133, chunks, 256, 128, 17024, kWorkspaceFloats);
  EXPECT_EQ(t.blocks, 1);
  EXPECT_EQ(t.splits, kGemm90MaxSplits);
  t = PlanGemm90Tail(132, 1, 133, 3, 256, 128, 17024, kWorkspaceFloats);
  EXPECT_EQ(t.splits, 3);
  t = PlanGemm90Tail(132, 1, 296, chunks, 256, 128, 37888, size_t{3} * 256 * 4096);
  EXPECT_EQ(t.splits, 3);
  t = PlanGemm90Tail(132, 1, 296, chunks, 256, 128, 37888, size_t{2} * 256 * 4096 - 1);
  EXPECT_EQ(t.blocks, 0);
}

// The GPU test's forced tails (GptqGemm90Variant::tail_blocks), and what the launch does with
// forcings it cannot honour: cut to the launch's column blocks but the first, to the chunks,
// kGemm90MaxSplits and the workspace; none when the workspace holds fewer than two slices.
TEST(Gemm90PlanTest, ForcedTailIsCutToWhatTheLaunchHolds) {
  const int chunks = 3584 / kGemm90Chunk;
  Gemm90Tail t = ForcedGemm90Tail(2, 2, 30, chunks, 256, 128, 3840, kWorkspaceFloats);
  EXPECT_EQ(t.blocks, 2);
  EXPECT_EQ(t.splits, 2);
  t = ForcedGemm90Tail(40, 3, 30, chunks, 256, 128, 3840, kWorkspaceFloats);
  EXPECT_EQ(t.blocks, 29);  // every block but the first
  EXPECT_EQ(t.splits, 3);
  t = ForcedGemm90Tail(1, 64, 30, 5, 256, 128, 3840, kWorkspaceFloats);
  EXPECT_EQ(t.splits, 5);  // the chunks
  t = ForcedGemm90Tail(1, 64, 30, chunks, 256, 128, 3840, kWorkspaceFloats);
  EXPECT_EQ(t.splits, kGemm90MaxSplits);
  // 3 slices of 256 rows x 128 columns fit, 4 do not: 3.
  t = ForcedGemm90Tail(1, 4, 30, chunks, 256, 128, 3840, size_t{3} * 256 * 128);
  EXPECT_EQ(t.splits, 3);
  // Not even two slices fit, a single column block, no block or one slice asked for: none.
  for (const Gemm90Tail& none :
       {ForcedGemm90Tail(1, 4, 30, chunks, 256, 128, 3840, size_t{2} * 256 * 128 - 1),
        ForcedGemm90Tail(1, 4, 1, chunks, 256, 128, 128, kWorkspaceFloats),
        ForcedGemm90Tail(0, 4, 30, chunks, 256, 128, 3840, kWorkspaceFloats),
        ForcedGemm90Tail(1, 1, 30, chunks, 256, 128, 3840, kWorkspaceFloats)}) {
    EXPECT_EQ(none.blocks, 0);
    EXPECT_EQ(none.splits, 1);
  }
}

}  // namespace
}  // namespace sluice::llm::cuda::gptq

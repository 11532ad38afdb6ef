// The warp-specialized wgmma prefill kernel's index arithmetic
// (device/cuda/attention_ws_pipeline.h) on a CPU: the copying warps' map of a K/V tile's chunks,
// and the protocol of the stages' full and empty barriers and of the computing warpgroups' turns,
// run as a model of the mbarrier and named-barrier semantics under many random interleavings of the
// three warpgroups. A mistake in either shows on a GPU only as wrong numbers or a hang.

#include "backends/llm/device/cuda/attention_ws_pipeline.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice::llm::cuda::ws {
namespace {

// Every (key, chunk) of a tile once; each copy's slot comes from a lane of the copier's own warp
// that looked that key up (lane l of warp w: key 32 w + l); each warp instruction reads whole
// rows, every chunk of a key from consecutive lanes.
TEST(AttentionWsPipelineTest, CopyMapCoversEveryChunkOnceFromTheWarpsOwnLookups) {
  for (int chunks : {8, 16}) {
    std::set<std::pair<int, int>> seen;
    for (int copier = 0; copier < kCopiers; ++copier) {
      const int warp = copier / kLanes;
      for (int i = 0; i < chunks; ++i) {
        const int key = CopyKey(copier, chunks, i);
        const int chunk = CopyChunk(copier, chunks);
        ASSERT_GE(key, 0);
        ASSERT_LT(key, kTileKeys);
        EXPECT_TRUE(seen.insert({key, chunk}).second) << "chunks " << chunks << " key " << key;
        EXPECT_EQ(key / kLanes, warp);
        EXPECT_EQ(CopySlotLane(copier, chunks, i), key % kLanes);
      }
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(kTileKeys * chunks));
    for (int warp = 0; warp < kCopiers / kLanes; ++warp) {
      for (int i = 0; i < chunks; ++i) {
        for (int lane = 0; lane < kLanes; ++lane) {
          const int copier = warp * kLanes + lane;
          const int first = warp * kLanes + lane / chunks * chunks;  // its row's first lane
          EXPECT_EQ(CopyKey(copier, chunks, i), CopyKey(first, chunks, i));
          EXPECT_EQ(CopyChunk(copier, chunks), lane - lane / chunks * chunks);
        }
      }
    }
  }
}

// mbarrier.try_wait.parity's semantics: a wait for parity p returns once the phase of that
// parity has completed, i.e. while the current (incomplete) phase has the other parity.
struct Mbarrier {
  int expected;
  int pending;
  int completed = 0;
  explicit Mbarrier(int arrivals) : expected(arrivals), pending(arrivals) {}
  void Arrive() {
    if (--pending == 0) {
      ++completed;
      pending = expected;
    }
  }
  bool Passes(uint32_t parity) const { return (static_cast<uint32_t>(completed) & 1u) != parity; }
};

// A named barrier of two participants (warpgroups): one syncs, the other arrives. A phase with
// two contributions of the same warpgroup would complete without the other: an error.
struct NamedBarrier {
  int arrived = 0;
  int first = -1;
  int generation = 0;
  std::string error;
  void Contribute(int wg) {
    if (arrived == 1 && first == wg) error = "warpgroup " + std::to_string(wg) + " twice";
    if (++arrived == 2) {
      arrived = 0;
      first = -1;
      ++generation;
    } else {
      first = wg;
    }
  }
};

// One block: the copying warpgroup and two computing ones, stepped in a random order; each
// step does the actor's next action unless it is blocked. Checks that every read finds the
// tile it expects in its stage, that no stage is refilled before both warpgroups released it,
// that with turns the warpgroups issue their products alternately, and that nothing hangs or
// is left half-arrived.
void RunBlock(int stages, int tiles, const int (&sees)[2], bool turns, std::mt19937& rng) {
  SCOPED_TRACE("stages " + std::to_string(stages) + " tiles " + std::to_string(tiles) + " sees " +
               std::to_string(sees[0]) + "," + std::to_string(sees[1]) + (turns ? " turns" : ""));
  std::vector<Mbarrier> full(stages, Mbarrier(1)), empty(stages, Mbarrier(2));
  NamedBarrier turn[2];
  std::vector<int> content(stages, -1);  // the tile a stage holds
  std::vector<int> released(tiles, 0);   // warpgroups done with tile t
  int copied = 0;                        // the copier's next tile
  struct Computer {
    int t = 0;
    int step = 0;  // 0 wait full, 1 wait turn, 2 issue, 3 release; t == tiles: flush
    int waiting_generation = -1;
    bool done = false;
  } comp[2];
  std::vector<int> issues;  // the warpgroups in their order of issue
  auto copier_step = [&]() -> bool {
    if (copied == tiles) return false;
    const int s = StageOf(copied, stages);
    if (copied >= stages) {
      if (!empty[s].Passes(EmptyParity(copied, stages))) return false;
      EXPECT_EQ(released[copied - stages], 2) << "tile " << copied << " over a tile in use";
    }
    content[s] = copied;
    full[s].Arrive();
    ++copied;
    return true;
  };
  auto computer_step = [&](int wg) -> bool {
    Computer& c = comp[wg];
    if (c.done) return false;
    if (c.t == tiles) {  // the last tile's P V
      if (sees[wg] == tiles) {
        EXPECT_EQ(content[StageOf(tiles - 1, stages)], tiles - 1);
      }
      c.done = true;
      return true;
    }
    const int t = c.t;
    switch (c.step) {
      case 0:
        if (!full[StageOf(t, stages)].Passes(FullParity(t, stages))) return false;
        c.step = 1;
        return true;
      case 1:
        if (turns && WaitsForTurn(wg, t)) {
          NamedBarrier& mine = turn[wg];
          if (c.waiting_generation < 0) {
            c.waiting_generation = mine.generation;
            mine.Contribute(wg);
          }
          if (mine.generation == c.waiting_generation) return false;
          c.waiting_generation = -1;
        }
        c.step = 2;
        return true;
      case 2:
        if (t < sees[wg]) {
          EXPECT_EQ(content[StageOf(t, stages)], t) << "K of tile " << t;
        }
        if (t > 0 && t - 1 < sees[wg]) {
          EXPECT_EQ(content[StageOf(t - 1, stages)], t - 1) << "V of tile " << t - 1;
        }
        issues.push_back(wg);
        if (turns && PassesTurn(wg, t, tiles)) turn[1 - wg].Contribute(wg);
        c.step = 3;
        return true;
      default:
        if (t > 0) {
          ++released[t - 1];
          empty[StageOf(t - 1, stages)].Arrive();
        }
        c.step = 0;
        ++c.t;
        return true;
    }
  };
  for (;;) {
    int order[3] = {0, 1, 2};
    std::shuffle(order, order + 3, rng);
    bool moved = false;
    for (int actor : order) {
      if (actor == 0 ? copier_step() : computer_step(actor - 1)) {
        moved = true;
        break;
      }
    }
    if (!moved) break;
  }
  ASSERT_TRUE(comp[0].done && comp[1].done && copied == tiles) << "hung";
  for (const NamedBarrier& b : turn) {
    EXPECT_EQ(b.error, "");
    EXPECT_EQ(b.arrived, 0) << "a turn barrier left half-arrived";
  }
  if (turns) {
    ASSERT_EQ(issues.size(), static_cast<size_t>(2 * tiles));
    for (size_t i = 0; i < issues.size(); ++i) EXPECT_EQ(issues[i], static_cast<int>(i % 2));
  }
}

TEST(AttentionWsPipelineTest, StagesAndTurnsUnderRandomInterleavings) {
  std::mt19937 rng(7);
  for (int stages : {2, 3, 4}) {
    for (int tiles = 1; tiles <= 11; ++tiles) {
      // Tiles a warpgroup's rows reach: all, all but the last (the diagonal block's second
      // half), or none (a block of at most 64 rows).
      for (const auto& sees : {std::pair{tiles, tiles}, std::pair{tiles - 1, tiles},
                               std::pair{tiles, 0}, std::pair{tiles - 1, 0}}) {
        const int s[2] = {sees.first, sees.second};
        for (bool turns : {false, true}) {
          for (int run = 0; run < 20; ++run) RunBlock(stages, tiles, s, turns, rng);
        }
      }
    }
  }
}

TEST(AttentionWsPipelineTest, ParitiesOfTheFirstPhases) {
  // Tile 0 .. stages - 1 wait for the full barriers' phase 0; the first refill of a stage for
  // its empty barrier's phase 0, the next for phase 1.
  EXPECT_EQ(FullParity(0, 3), 0u);
  EXPECT_EQ(FullParity(2, 3), 0u);
  EXPECT_EQ(FullParity(3, 3), 1u);
  EXPECT_EQ(FullParity(6, 3), 0u);
  EXPECT_EQ(EmptyParity(3, 3), 0u);
  EXPECT_EQ(EmptyParity(5, 3), 0u);
  EXPECT_EQ(EmptyParity(6, 3), 1u);
  EXPECT_EQ(StageOf(7, 3), 1);
}

}  // namespace
}  // namespace sluice::llm::cuda::ws

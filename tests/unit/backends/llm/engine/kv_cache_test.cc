// BlockManager: allocation, reference counts, prefix caching (hash chains, LRU eviction),
// prefix-cache counters and the leak sentinel.
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/block_manager.h"

namespace sluice::llm {
namespace {

std::vector<int32_t> Range(int32_t start, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), start);
  return v;
}

std::unique_ptr<BlockManager> Make(int32_t blocks, int32_t block_size, bool caching = true) {
  auto r = BlockManager::Create(blocks, block_size, caching);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(KvCacheTest, CreateRefusesBadSizes) {
  EXPECT_EQ(BlockManager::Create(0, 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockManager::Create(4, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BlockManager::Create(4, 4096).status().code(), StatusCode::kInvalidArgument);
  auto ok = BlockManager::Create(8);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->block_size(), 16);
  EXPECT_EQ((*ok)->total(), 8);
}

TEST(KvCacheTest, AllocateGrowAndFree) {
  auto bm = Make(8, 4);
  EXPECT_TRUE(bm->CheckIdle().ok());
  ASSERT_TRUE(bm->EnsureSlots(1, 5));  // 2 blocks
  EXPECT_EQ(bm->block_table(1).size(), 2u);
  EXPECT_EQ(bm->num_free(), 6);
  ASSERT_TRUE(bm->EnsureSlots(1, 8));  // still 2 blocks
  EXPECT_EQ(bm->block_table(1).size(), 2u);
  ASSERT_TRUE(bm->EnsureSlots(1, 9));
  EXPECT_EQ(bm->block_table(1).size(), 3u);
  for (int32_t b : bm->block_table(1)) EXPECT_EQ(bm->ref_count(b), 1);
  EXPECT_FALSE(bm->CheckIdle().ok());
  EXPECT_NEAR(bm->usage(), 3.0 / 8.0, 1e-12);
  bm->Free(1);
  EXPECT_EQ(bm->num_free(), 8);
  EXPECT_TRUE(bm->CheckIdle().ok());
}

TEST(KvCacheTest, EnsureSlotsFailsWithoutChangingAnything) {
  auto bm = Make(3, 4);
  ASSERT_TRUE(bm->EnsureSlots(1, 8));
  EXPECT_FALSE(bm->EnsureSlots(2, 8));  // needs 2, 1 left
  EXPECT_EQ(bm->num_free(), 1);
  EXPECT_TRUE(bm->block_table(2).empty());
  EXPECT_EQ(bm->num_live_sequences(), 1);
  EXPECT_FALSE(bm->EnsureSlots(1, 16));  // needs 2 more
  EXPECT_EQ(bm->block_table(1).size(), 2u);
  bm->Free(1);
  EXPECT_TRUE(bm->CheckIdle().ok());
}

TEST(KvCacheTest, PrefixHitSharesBlocksWithRefCounts) {
  auto bm = Make(10, 4);
  const auto tokens = Range(100, 10);  // 2 full blocks + 2 tokens
  ASSERT_TRUE(bm->EnsureSlots(1, 10));
  bm->CacheFullBlocks(1, tokens, 10);
  PrefixHit hit = bm->MatchPrefix(tokens);
  ASSERT_EQ(hit.blocks.size(), 2u);
  EXPECT_EQ(hit.num_tokens, 8);
  EXPECT_EQ(hit.blocks[0], bm->block_table(1)[0]);
  EXPECT_EQ(hit.blocks[1], bm->block_table(1)[1]);
  bm->Admit(2, 10, hit);
  ASSERT_TRUE(bm->EnsureSlots(2, 10));
  EXPECT_EQ(bm->ref_count(hit.blocks[0]), 2);
  EXPECT_EQ(bm->ref_count(hit.blocks[1]), 2);
  EXPECT_NE(bm->block_table(2)[2], bm->block_table(1)[2]);  // the partial block is private
  EXPECT_EQ(bm->num_free(), 10 - 4);
  EXPECT_EQ(bm->prefix_cache_queries(), 10u);
  EXPECT_EQ(bm->prefix_cache_hits(), 8u);
  bm->Free(1);
  EXPECT_EQ(bm->ref_count(hit.blocks[0]), 1);
  EXPECT_EQ(bm->num_evictable(), 0);
  bm->Free(2);
  EXPECT_EQ(bm->num_evictable(), 2);  // cached blocks stay, evictable
  EXPECT_EQ(bm->num_free(), 8);
  EXPECT_TRUE(bm->CheckIdle().ok());
}

TEST(KvCacheTest, HitLeavesAtLeastOneTokenToCompute) {
  auto bm = Make(10, 4);
  const auto tokens = Range(0, 8);
  ASSERT_TRUE(bm->EnsureSlots(1, 8));
  bm->CacheFullBlocks(1, tokens, 8);
  EXPECT_EQ(bm->MatchPrefix(tokens).blocks.size(), 1u);  // 8 tokens: at most 7 cached
  auto longer = Range(0, 9);
  EXPECT_EQ(bm->MatchPrefix(longer).blocks.size(), 2u);
  bm->Free(1);
}

TEST(KvCacheTest, HashChainDependsOnParent) {
  auto bm = Make(10, 4);
  // Block content [4..7] at position 1 after [0..3].
  auto a = Range(0, 9);
  ASSERT_TRUE(bm->EnsureSlots(1, 9));
  bm->CacheFullBlocks(1, a, 9);
  // Same second block, different first block: no hit at all.
  std::vector<int32_t> b = a;
  b[0] = 99;
  EXPECT_EQ(bm->MatchPrefix(b).blocks.size(), 0u);
  // Same first block, different second: one block.
  std::vector<int32_t> c = a;
  c[5] = 99;
  EXPECT_EQ(bm->MatchPrefix(c).blocks.size(), 1u);
  // Only computed tokens are cached.
  auto bm2 = Make(10, 4);
  ASSERT_TRUE(bm2->EnsureSlots(1, 9));
  bm2->CacheFullBlocks(1, a, 6);
  EXPECT_EQ(bm2->MatchPrefix(a).blocks.size(), 1u);
  bm->Free(1);
  bm2->Free(1);
}

TEST(KvCacheTest, PrecomputedHashChainMatchesTheSame) {
  auto bm = Make(10, 4);
  auto a = Range(0, 13);
  ASSERT_TRUE(bm->EnsureSlots(1, 13));
  bm->CacheFullBlocks(1, a, 13);
  std::vector<uint64_t> hashes;
  bm->ExtendBlockHashes(std::span<const int32_t>(a).first(6), hashes);
  EXPECT_EQ(hashes.size(), 1u);
  bm->ExtendBlockHashes(a, hashes);  // extends, keeping the first
  ASSERT_EQ(hashes.size(), 3u);
  EXPECT_EQ(hashes[1], BlockManager::HashBlock(hashes[0], std::span<const int32_t>(a).subspan(4, 4)));
  const PrefixHit h1 = bm->MatchPrefix(a);
  const PrefixHit h2 = bm->MatchPrefix(a, hashes);
  EXPECT_EQ(h1.blocks, h2.blocks);
  EXPECT_EQ(h1.hashes, hashes);
  EXPECT_EQ(h2.num_tokens, 12);
  bm->Free(1);
}

TEST(KvCacheTest, DisabledCachingNeverHits) {
  auto bm = Make(10, 4, /*caching=*/false);
  auto a = Range(0, 9);
  ASSERT_TRUE(bm->EnsureSlots(1, 9));
  bm->CacheFullBlocks(1, a, 9);
  EXPECT_TRUE(bm->MatchPrefix(a).blocks.empty());
  bm->Free(1);
  EXPECT_EQ(bm->num_free(), 10);
  EXPECT_EQ(bm->num_evictable(), 0);
}

TEST(KvCacheTest, EvictsLeastRecentlyUsedTailFirst) {
  auto bm = Make(4, 4);
  const auto a = Range(0, 9);    // A: 2 full blocks (+1 token, 3 blocks)
  const auto b = Range(50, 9);   // B: 2 full blocks
  ASSERT_TRUE(bm->EnsureSlots(1, 8));
  bm->CacheFullBlocks(1, a, 8);
  bm->Free(1);  // A's 2 blocks evictable: tail first in the LRU
  ASSERT_TRUE(bm->EnsureSlots(2, 8));
  bm->CacheFullBlocks(2, b, 8);
  bm->Free(2);
  EXPECT_EQ(bm->num_evictable(), 4);
  EXPECT_EQ(bm->num_free(), 0);
  EXPECT_TRUE(bm->CheckIdle().ok());
  // One new block evicts A's tail block, the least recently used.
  ASSERT_TRUE(bm->EnsureSlots(3, 1));
  EXPECT_EQ(bm->num_evictable(), 3);
  EXPECT_EQ(bm->MatchPrefix(a).blocks.size(), 1u);
  EXPECT_EQ(bm->MatchPrefix(b).blocks.size(), 2u);
  // A hit refreshes: B's blocks leave the LRU while held, then come back as most recent.
  PrefixHit hb = bm->MatchPrefix(b);
  bm->Admit(4, 9, hb);
  EXPECT_EQ(bm->num_evictable(), 1);
  bm->Free(4);
  // Next eviction takes A's head (older than B's).
  ASSERT_TRUE(bm->EnsureSlots(3, 5));
  EXPECT_EQ(bm->MatchPrefix(a).blocks.size(), 0u);
  EXPECT_EQ(bm->MatchPrefix(b).blocks.size(), 2u);
  bm->Free(3);
  EXPECT_TRUE(bm->CheckIdle().ok());
}

TEST(KvCacheTest, CheckIdleNamesTheLeak) {
  auto bm = Make(4, 4);
  ASSERT_TRUE(bm->EnsureSlots(7, 3));
  Status st = bm->CheckIdle();
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_NE(st.message().find("1 sequence"), std::string::npos) << st.message();
  bm->Free(7);
  EXPECT_TRUE(bm->CheckIdle().ok());
}

}  // namespace
}  // namespace sluice::llm

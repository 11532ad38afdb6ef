#pragma once
// KV-cache block accounting (paged KV cache): which physical blocks hold which sequence's
// tokens. Fixed-size blocks, one block table per sequence, reference counts, and prefix
// caching: every FULL block is named by a hash chain hash(parent block's hash, its token
// ids), so a later sequence starting with the same tokens reuses the blocks instead of
// recomputing them. A cached block whose reference count drops to 0 is "evictable": it
// stays in an LRU and is reused by a prefix hit, or evicted when free blocks run out.
//
// The manager only counts; the KV tensors themselves live in the ModelRunner.
// Not thread-safe: used from the engine thread only (the scheduler reads it through
// KvCacheView, a const view).

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace sluice::llm {

using SeqId = int64_t;

// What the scheduler may know about the cache when it plans a step.
class KvCacheView {
 public:
  virtual ~KvCacheView() = default;
  virtual int32_t block_size() const = 0;
  virtual int32_t total() const = 0;
  // Blocks an allocation may take now: free ones plus evictable cached ones.
  virtual int32_t num_available() const = 0;
  // Number of sequences holding `block` (0 for free or evictable blocks).
  virtual int32_t ref_count(int32_t block) const = 0;
};

// Cached full blocks matching the start of a token sequence.
struct PrefixHit {
  std::vector<int32_t> blocks;
  std::vector<uint64_t> hashes;  // the hash chain of those blocks
  int32_t num_tokens = 0;        // blocks.size() * block_size
};

class BlockManager final : public KvCacheView {
 public:
  static constexpr int32_t kDefaultBlockSize = 16;

  // num_blocks >= 1, 1 <= block_size <= 1024.
  static Result<std::unique_ptr<BlockManager>> Create(int32_t num_blocks,
                                                      int32_t block_size = kDefaultBlockSize,
                                                      bool enable_prefix_caching = true);

  // KvCacheView.
  int32_t block_size() const override { return block_size_; }
  int32_t total() const override { return static_cast<int32_t>(blocks_.size()); }
  int32_t num_available() const override { return num_free() + num_evictable(); }
  int32_t ref_count(int32_t block) const override;

  int32_t num_free() const { return static_cast<int32_t>(free_.size()); }
  int32_t num_evictable() const { return static_cast<int32_t>(lru_.size()); }
  // Fraction of blocks in use by live sequences (evictable ones count as unused), 0..1.
  double usage() const;

  // The longest run of cached full blocks that equals the start of `tokens`, capped so that
  // at least one token is left to compute (its logits are needed). Changes nothing.
  PrefixHit MatchPrefix(std::span<const int32_t> tokens) const;
  // The same, given the hash chain of the full blocks of `tokens` (from
  // ExtendBlockHashes), so that a sequence waiting many steps is hashed once.
  PrefixHit MatchPrefix(std::span<const int32_t> tokens,
                        std::span<const uint64_t> block_hashes) const;
  // Appends to `hashes` the chain hashes of the full blocks of `tokens` it lacks.
  void ExtendBlockHashes(std::span<const int32_t> tokens, std::vector<uint64_t>& hashes) const;

  // Starts the block table of a new sequence `seq` (which must not be live) with the
  // blocks of `hit` (from MatchPrefix, with nothing freed or allocated in between) and
  // counts a prefix-cache query of `num_query_tokens` tokens with hit.num_tokens hits.
  void Admit(SeqId seq, int32_t num_query_tokens, const PrefixHit& hit);

  // Grows the block table of `seq` (starting it if new) so that it covers `num_tokens`
  // tokens, evicting least recently used cached blocks if free ones run out. Returns
  // false, changing nothing, if there are not enough blocks.
  [[nodiscard]] bool EnsureSlots(SeqId seq, int32_t num_tokens);

  // After a forward pass: names every block of `seq` that is full within the first
  // `num_computed_tokens` of `tokens` by its hash, so later sequences can hit it.
  void CacheFullBlocks(SeqId seq, std::span<const int32_t> tokens, int32_t num_computed_tokens);

  // Releases every block of `seq` (tail blocks become the first to evict). No-op if the
  // sequence is not live.
  void Free(SeqId seq);

  // Block table of a live sequence (empty if unknown).
  const std::vector<int32_t>& block_table(SeqId seq) const;
  int32_t num_live_sequences() const { return static_cast<int32_t>(seqs_.size()); }

  // Leak sentinel: with no live sequence, free + evictable must equal total and every
  // reference count must be 0. Returns Internal naming the discrepancy otherwise.
  Status CheckIdle() const;

  // Prefix cache counters, in tokens (vLLM's prefix_cache_queries / prefix_cache_hits).
  uint64_t prefix_cache_queries() const { return prefix_queries_; }
  uint64_t prefix_cache_hits() const { return prefix_hits_; }

  // Hash of a full block given its parent's hash (kRootHash for the first block).
  static constexpr uint64_t kRootHash = 0x9e3779b97f4a7c15ull;
  static uint64_t HashBlock(uint64_t parent, std::span<const int32_t> tokens);

 private:
  struct Block {
    int32_t ref = 0;
    bool cached = false;  // registered in cached_ under `hash`
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;  // the block's tokens while cached (verifies a hash hit)
    std::list<int32_t>::iterator lru_it;
    bool in_lru = false;
  };
  struct SeqState {
    std::vector<int32_t> table;
    std::vector<uint64_t> hashes;  // hash chain of the leading full blocks computed so far
  };

  BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching);
  int32_t TakeBlock();  // caller checked num_available() > 0
  void Release(int32_t block);

  const int32_t block_size_;
  const bool enable_prefix_caching_;
  std::vector<Block> blocks_;
  std::vector<int32_t> free_;  // uncached blocks with ref 0 (a stack)
  std::list<int32_t> lru_;     // cached blocks with ref 0; front is evicted first
  std::unordered_map<uint64_t, int32_t> cached_;  // hash -> block
  std::unordered_map<SeqId, SeqState> seqs_;
  uint64_t prefix_queries_ = 0;
  uint64_t prefix_hits_ = 0;
};

}  // namespace sluice::llm

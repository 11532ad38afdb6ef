#include "backends/llm/engine/block_manager.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace sluice::llm {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

const std::vector<int32_t> kEmptyTable;

}  // namespace

uint64_t BlockManager::HashBlock(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = Mix(parent ^ 0x5851f42d4c957f2dull);
  for (int32_t t : tokens) h = Mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 1));
  return Mix(h ^ tokens.size());
}

Result<std::unique_ptr<BlockManager>> BlockManager::Create(int32_t num_blocks, int32_t block_size,
                                                           bool enable_prefix_caching) {
  if (num_blocks < 1) {
    return InvalidArgument("KV cache: num_blocks must be >= 1, got " + std::to_string(num_blocks));
  }
  if (block_size < 1 || block_size > 1024) {
    return InvalidArgument("KV cache: block_size must be in [1, 1024], got " +
                           std::to_string(block_size));
  }
  return std::unique_ptr<BlockManager>(
      new BlockManager(num_blocks, block_size, enable_prefix_caching));
}

BlockManager::BlockManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching)
    : block_size_(block_size), enable_prefix_caching_(enable_prefix_caching), blocks_(num_blocks) {
  free_.reserve(num_blocks);
  // A stack popping block 0 first.
  for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t BlockManager::ref_count(int32_t block) const {
  if (block < 0 || block >= total()) return 0;
  return blocks_[block].ref;
}

double BlockManager::usage() const {
  return 1.0 - static_cast<double>(num_available()) / static_cast<double>(total());
}

void BlockManager::ExtendBlockHashes(std::span<const int32_t> tokens,
                                     std::vector<uint64_t>& hashes) const {
  const size_t full = tokens.size() / block_size_;
  while (hashes.size() < full) {
    const size_t i = hashes.size();
    hashes.push_back(HashBlock(i == 0 ? kRootHash : hashes[i - 1],
                               tokens.subspan(i * block_size_, block_size_)));
  }
}

PrefixHit BlockManager::MatchPrefix(std::span<const int32_t> tokens) const {
  std::vector<uint64_t> hashes;
  if (enable_prefix_caching_) ExtendBlockHashes(tokens, hashes);
  return MatchPrefix(tokens, hashes);
}

PrefixHit BlockManager::MatchPrefix(std::span<const int32_t> tokens,
                                    std::span<const uint64_t> block_hashes) const {
  PrefixHit hit;
  if (!enable_prefix_caching_ || tokens.empty()) return hit;
  const size_t max_blocks = std::min((tokens.size() - 1) / block_size_, block_hashes.size());
  uint64_t parent = kRootHash;
  for (size_t i = 0; i < max_blocks; ++i) {
    auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    const uint64_t h = block_hashes[i];
    auto it = cached_.find(h);
    if (it == cached_.end()) break;
    const Block& b = blocks_[it->second];
    if (b.parent_hash != parent ||
        !std::equal(b.tokens.begin(), b.tokens.end(), block_tokens.begin(), block_tokens.end())) {
      break;  // a hash collision: treat as a miss
    }
    hit.blocks.push_back(it->second);
    hit.hashes.push_back(h);
    parent = h;
  }
  hit.num_tokens = static_cast<int32_t>(hit.blocks.size()) * block_size_;
  return hit;
}

void BlockManager::Admit(SeqId seq, int32_t num_query_tokens, const PrefixHit& hit) {
  assert(seqs_.find(seq) == seqs_.end());
  SeqState& state = seqs_[seq];
  for (int32_t b : hit.blocks) {
    Block& block = blocks_[b];
    assert(block.cached);
    if (block.ref == 0 && block.in_lru) {
      lru_.erase(block.lru_it);
      block.in_lru = false;
    }
    ++block.ref;
    state.table.push_back(b);
  }
  state.hashes = hit.hashes;
  if (enable_prefix_caching_) {
    prefix_queries_ += static_cast<uint64_t>(std::max(num_query_tokens, 0));
    prefix_hits_ += static_cast<uint64_t>(hit.num_tokens);
  }
}

int32_t BlockManager::TakeBlock() {
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    assert(!lru_.empty());
    b = lru_.front();
    lru_.pop_front();
    Block& evicted = blocks_[b];
    evicted.in_lru = false;
    cached_.erase(evicted.hash);
    evicted.cached = false;
    evicted.tokens.clear();
  }
  assert(blocks_[b].ref == 0);
  blocks_[b].ref = 1;
  return b;
}

bool BlockManager::EnsureSlots(SeqId seq, int32_t num_tokens) {
  SeqState& state = seqs_[seq];
  const int64_t want = (static_cast<int64_t>(std::max(num_tokens, 0)) + block_size_ - 1) /
                       block_size_;
  const int64_t need = want - static_cast<int64_t>(state.table.size());
  if (need <= 0) return true;
  if (need > num_available()) {
    if (state.table.empty()) seqs_.erase(seq);
    return false;
  }
  for (int64_t i = 0; i < need; ++i) state.table.push_back(TakeBlock());
  return true;
}

void BlockManager::CacheFullBlocks(SeqId seq, std::span<const int32_t> tokens,
                                   int32_t num_computed_tokens) {
  if (!enable_prefix_caching_) return;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  SeqState& state = it->second;
  const size_t limit = std::min(static_cast<size_t>(std::max(num_computed_tokens, 0)),
                                tokens.size());
  const size_t full = std::min(limit / block_size_, state.table.size());
  while (state.hashes.size() < full) {
    const size_t i = state.hashes.size();
    const uint64_t parent = i == 0 ? kRootHash : state.hashes[i - 1];
    auto block_tokens = tokens.subspan(i * block_size_, block_size_);
    const uint64_t h = HashBlock(parent, block_tokens);
    state.hashes.push_back(h);
    Block& block = blocks_[state.table[i]];
    if (block.cached || cached_.count(h) != 0) continue;  // first writer keeps the name
    block.cached = true;
    block.hash = h;
    block.parent_hash = parent;
    block.tokens.assign(block_tokens.begin(), block_tokens.end());
    cached_.emplace(h, state.table[i]);
  }
}

void BlockManager::Release(int32_t b) {
  Block& block = blocks_[b];
  assert(block.ref > 0);
  if (--block.ref > 0) return;
  if (block.cached) {
    block.lru_it = lru_.insert(lru_.end(), b);
    block.in_lru = true;
  } else {
    free_.push_back(b);
  }
}

void BlockManager::Free(SeqId seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  // Tail first, so that a sequence's last blocks are the first evicted.
  for (auto b = it->second.table.rbegin(); b != it->second.table.rend(); ++b) Release(*b);
  seqs_.erase(it);
}

const std::vector<int32_t>& BlockManager::block_table(SeqId seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? kEmptyTable : it->second.table;
}

Status BlockManager::CheckIdle() const {
  if (!seqs_.empty()) {
    return Internal("KV cache leak check: " + std::to_string(seqs_.size()) +
                    " sequence(s) still hold blocks");
  }
  if (num_free() + num_evictable() != total()) {
    return Internal("KV cache leak check: free " + std::to_string(num_free()) + " + evictable " +
                    std::to_string(num_evictable()) + " != total " + std::to_string(total()));
  }
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (blocks_[b].ref != 0) {
      return Internal("KV cache leak check: block " + std::to_string(b) + " has reference count " +
                      std::to_string(blocks_[b].ref));
    }
  }
  return Status::Ok();
}

}  // namespace sluice::llm

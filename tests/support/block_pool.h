#pragma once
// Test helper shared by the model tests (CPU and CUDA): hands out KV blocks in a scrambled
// order, so that no sequence's blocks are contiguous.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace sluice::llm::testing {

class BlockPool {
 public:
  BlockPool(int32_t n, uint32_t seed) : free_(n) {
    std::iota(free_.begin(), free_.end(), 0);
    std::shuffle(free_.begin(), free_.end(), std::mt19937(seed));
  }
  // Appends blocks to `table` until it holds `tokens` slots.
  void Cover(std::vector<int32_t>& table, int32_t tokens, int32_t block_size) {
    while (static_cast<int32_t>(table.size()) * block_size < tokens) {
      ASSERT_FALSE(free_.empty());
      table.push_back(free_.back());
      free_.pop_back();
    }
  }

 private:
  std::vector<int32_t> free_;
};

}  // namespace sluice::llm::testing

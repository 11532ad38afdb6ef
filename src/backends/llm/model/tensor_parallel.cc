#include "backends/llm/model/tensor_parallel.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace sluice::llm {

Result<TpLayout> MakeTpLayout(const HfModelConfig& c, int32_t rank, int32_t size) {
  if (size < 1 || rank < 0 || rank >= size) {
    return InvalidArgument("tensor parallel rank " + std::to_string(rank) + " of " +
                           std::to_string(size) + " is out of range");
  }
  auto refuse = [&](const std::string& what, int32_t n) {
    return InvalidArgument("tensor_parallel_size " + std::to_string(size) + " does not divide " +
                           what + " (" + std::to_string(n) + ")");
  };
  if (c.num_heads % size != 0) return refuse("the attention heads", c.num_heads);
  if (c.intermediate_size % size != 0) return refuse("intermediate_size", c.intermediate_size);
  if (c.num_kv_heads % size != 0 && size % c.num_kv_heads != 0) {
    return InvalidArgument("tensor_parallel_size " + std::to_string(size) +
                           " neither divides nor is a multiple of the kv heads (" +
                           std::to_string(c.num_kv_heads) + ")");
  }
  TpLayout t;
  t.rank = rank;
  t.size = size;
  t.q_heads = c.num_heads / size;
  t.q_head_first = rank * t.q_heads;
  if (c.num_kv_heads >= size) {
    t.kv_heads = c.num_kv_heads / size;
    t.kv_head_first = rank * t.kv_heads;
  } else {  // replicated: the kv head of this rank's q heads
    t.kv_heads = 1;
    t.kv_head_first = rank * c.num_kv_heads / size;
  }
  t.inter = c.intermediate_size / size;
  t.inter_first = rank * t.inter;
  return t;
}

WeightSource SliceRows(const WeightSource& w, int64_t cols, int64_t first, int64_t count) {
  WeightSource s = w;
  const size_t elem = DTypeSize(w.dtype);
  s.host = static_cast<const std::byte*>(w.host) + static_cast<size_t>(first * cols) * elem;
  s.elements = static_cast<size_t>(count * cols);
  return s;
}

WeightSource SliceColumns(const WeightSource& w, int64_t rows, int64_t cols, int64_t first,
                          int64_t count) {
  const size_t elem = DTypeSize(w.dtype);
  auto copy = std::make_shared<std::vector<std::byte>>(static_cast<size_t>(rows * count) * elem);
  const auto* src = static_cast<const std::byte*>(w.host);
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(copy->data() + static_cast<size_t>(r * count) * elem,
                src + static_cast<size_t>(r * cols + first) * elem,
                static_cast<size_t>(count) * elem);
  }
  WeightSource s;
  s.dtype = w.dtype;
  s.host = copy->data();
  s.elements = static_cast<size_t>(rows * count);
  s.keep_alive = std::move(copy);
  return s;
}

}  // namespace sluice::llm

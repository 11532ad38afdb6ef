#pragma once
// The CPU device's attention for one row and the q heads of one kv head, with AVX2/FMA: the
// scores of 8 positions at a time (8 dot products reduced together), the softmax's
// exponentials 8 at a time, and the weighted sum of V for up to 6 (or 12) heads at once, each
// V row read once for them. The portable path lives in cpu_device.cc.

#include <cstddef>
#include <cstdint>

namespace sluice::llm {

struct AttendArgs {
  const float* q = nullptr;  // [heads, dim], the group's q heads back to back
  int32_t heads = 0;
  int32_t dim = 0;  // AttendSimdFits
  // K and V of position p: k + slots[p] * kv_width, v + slots[p] * kv_width (k and v already
  // offset to the kv head).
  const float* k = nullptr;
  const float* v = nullptr;
  size_t kv_width = 0;
  const int64_t* slots = nullptr;  // [len]
  int32_t len = 0;                 // >= 1
  float scale = 0.f;
  float* scores = nullptr;   // scratch [heads, len]
  float* inv_sum = nullptr;  // scratch [heads]
  float* out = nullptr;      // [heads, dim]
};

// Head sizes the kernel handles (multiples of 16).
inline bool AttendSimdFits(int32_t dim) {
  return dim > 0 && dim % 16 == 0;
}

// softmax(q k^T * scale) v for each head. Needs CpuHasSimd().
void AttendSimd(const AttendArgs& a);

}  // namespace sluice::llm

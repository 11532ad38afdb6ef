#pragma once
// Conversions of bf16 and fp16 (IEEE binary16) bit patterns to fp32.

#include <cstdint>
#include <cstring>

namespace sluice::llm {

inline float Bf16ToF32(uint16_t bits) {
  uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Exact for every binary16 value, subnormals, infinities and NaN included.
float F16ToF32(uint16_t bits);

// Round-to-nearest-even fp32 -> bf16 / fp16 (for tests and fixtures).
uint16_t F32ToBf16(float f);
uint16_t F32ToF16(float f);

}  // namespace sluice::llm

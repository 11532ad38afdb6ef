#include "backends/llm/device/cpu/half.h"

#include <cmath>

namespace sluice::llm {

float F16ToF32(uint16_t bits) {
  const uint32_t sign = (bits >> 15) & 1;
  const uint32_t exp = (bits >> 10) & 0x1f;
  const uint32_t man = bits & 0x3ff;
  float mag;
  if (exp == 0) {
    mag = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    mag = man == 0 ? INFINITY : NAN;
  } else {
    mag = std::ldexp(static_cast<float>(man | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -mag : mag;
}

uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

uint16_t F32ToF16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.f) return sign | 0x7c00;
  if (a < std::ldexp(1.f, -14)) {  // subnormal: units of 2^-24, round half to even
    float units = a * std::ldexp(1.f, 24);
    return sign | static_cast<uint16_t>(std::nearbyint(units));
  }
  int e;
  float m = std::frexp(a, &e);                       // a = m * 2^e, m in [0.5, 1)
  float scaled = std::nearbyint(std::ldexp(m, 11));  // 11 significant bits
  if (scaled >= 2048.f) {
    scaled /= 2;
    ++e;
  }
  uint16_t exp = static_cast<uint16_t>(e - 1 + 15);
  return sign | static_cast<uint16_t>(exp << 10) |
         static_cast<uint16_t>(static_cast<uint32_t>(scaled) & 0x3ff);
}

}  // namespace sluice::llm

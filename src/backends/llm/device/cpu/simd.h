#pragma once
// What the CPU device's AVX2 kernels share. They are compiled per function for AVX2/FMA/F16C
// (the rest of the build targets the baseline x86-64) and called only when CpuHasSimd().

#include <immintrin.h>

#define SLUICE_SIMD __attribute__((target("avx2,fma,f16c")))

namespace sluice::llm {

// v[0] + ... + v[7]: the halves added, then pairs, then the last two.
SLUICE_SIMD inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace sluice::llm

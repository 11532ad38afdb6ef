#include "backends/llm/device/cpu/attention_kernel.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backends/llm/device/cpu/simd.h"

namespace sluice::llm {
namespace {

// exp(x) for x <= 0 (scores less their maximum), Cephes' expf: x = n ln2 + r with |r| <=
// ln2 / 2, a degree-6 polynomial for e^r, 2^n from the exponent bits. About 1 ulp; below
// -87.3 (where e^x < FLT_MIN) it returns ~1e-38 instead of 0, nothing against a sum >= 1.
SLUICE_SIMD inline __m256 Exp(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
  const __m256i pow2n =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(pow2n));
}

// The 8 horizontal sums of a[0..7], in order.
SLUICE_SIMD inline __m256 Sum8(const __m256 (&a)[8]) {
  const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

SLUICE_SIMD float HorizontalMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

SLUICE_SIMD float Dot(const float* a, const float* b, int32_t n) {
  __m256 acc = _mm256_setzero_ps();
  for (int32_t i = 0; i < n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  }
  return HorizontalSum(acc);
}

// out[h] = inv_sum[h] * sum_p w[h, p] v_p for heads [j0, j0 + nh), nh <= kHeads, over chunks
// of 8 * kVecs floats: each V chunk is loaded once for all nh heads, whose kHeads * kVecs
// accumulators stay in registers (12 of the 16).
// Positions ahead whose cache rows are requested early (the paged cache's rows are scattered,
// so the hardware prefetcher does not find them).
constexpr int32_t kPrefetchAhead = 8;

// Requests the `bytes` at p (whole cache lines) into L1.
SLUICE_SIMD inline void PrefetchRow(const float* p, size_t bytes) {
  const char* c = reinterpret_cast<const char*>(p);
  for (size_t off = 0; off < bytes; off += 64) _mm_prefetch(c + off, _MM_HINT_T0);
}

template <int kHeads, int kVecs>
SLUICE_SIMD void WeightedV(const AttendArgs& a, int32_t j0, int nh) {
  const int32_t d = a.dim, len = a.len;
  const float* w = a.scores + static_cast<size_t>(j0) * len;
  for (int32_t i = 0; i < d; i += 8 * kVecs) {
    __m256 acc[kHeads][kVecs];
    for (auto& h : acc) {
      for (auto& v : h) v = _mm256_setzero_ps();
    }
    for (int32_t p = 0; p < len; ++p) {
      // The cache's rows are scattered (paged): ask for the row kPrefetchAhead positions on.
      if (p + kPrefetchAhead < len) {
        _mm_prefetch(
            reinterpret_cast<const char*>(a.v + a.slots[p + kPrefetchAhead] * a.kv_width + i),
            _MM_HINT_T0);
      }
      const float* v = a.v + a.slots[p] * a.kv_width + i;
      __m256 vv[kVecs];
      for (int c = 0; c < kVecs; ++c) vv[c] = _mm256_loadu_ps(v + 8 * c);
      for (int h = 0; h < kHeads; ++h) {
        if (h < nh) {
          const __m256 wv = _mm256_set1_ps(w[static_cast<size_t>(h) * len + p]);
          for (int c = 0; c < kVecs; ++c) acc[h][c] = _mm256_fmadd_ps(wv, vv[c], acc[h][c]);
        }
      }
    }
    for (int h = 0; h < nh; ++h) {
      float* o = a.out + static_cast<size_t>(j0 + h) * d + i;
      const __m256 inv = _mm256_set1_ps(a.inv_sum[j0 + h]);
      for (int c = 0; c < kVecs; ++c) _mm256_storeu_ps(o + 8 * c, _mm256_mul_ps(acc[h][c], inv));
    }
  }
}

}  // namespace

SLUICE_SIMD void AttendSimd(const AttendArgs& a) {
  const int32_t d = a.dim, len = a.len;
  // Scores: 8 positions at a time, their K rows shared by the heads.
  int32_t p0 = 0;
  for (; p0 + 8 <= len; p0 += 8) {
    const float* k[8];
    for (int t = 0; t < 8; ++t) k[t] = a.k + a.slots[p0 + t] * a.kv_width;
    for (int32_t t = p0 + 8; t < std::min(len, p0 + 16); ++t) {
      PrefetchRow(a.k + a.slots[t] * a.kv_width, static_cast<size_t>(d) * sizeof(float));
    }
    for (int32_t j = 0; j < a.heads; ++j) {
      const float* q = a.q + static_cast<size_t>(j) * d;
      __m256 acc[8];
      for (auto& v : acc) v = _mm256_setzero_ps();
      for (int32_t i = 0; i < d; i += 8) {
        const __m256 qv = _mm256_loadu_ps(q + i);
        for (int t = 0; t < 8; ++t) acc[t] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[t] + i), acc[t]);
      }
      _mm256_storeu_ps(a.scores + static_cast<size_t>(j) * len + p0,
                       _mm256_mul_ps(Sum8(acc), _mm256_set1_ps(a.scale)));
    }
  }
  for (; p0 < len; ++p0) {
    const float* k = a.k + a.slots[p0] * a.kv_width;
    for (int32_t j = 0; j < a.heads; ++j) {
      a.scores[static_cast<size_t>(j) * len + p0] =
          Dot(a.q + static_cast<size_t>(j) * d, k, d) * a.scale;
    }
  }
  // Softmax weights in place (not yet divided by their sum).
  float* inv_sum = a.inv_sum;
  for (int32_t j = 0; j < a.heads; ++j) {
    float* s = a.scores + static_cast<size_t>(j) * len;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int32_t p = 0;
    for (; p + 8 <= len; p += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + p));
    float mx = HorizontalMax(vmax);
    for (; p < len; ++p) mx = std::max(mx, s[p]);
    const __m256 m = _mm256_set1_ps(mx);
    __m256 vsum = _mm256_setzero_ps();
    for (p = 0; p + 8 <= len; p += 8) {
      const __m256 w = Exp(_mm256_sub_ps(_mm256_loadu_ps(s + p), m));
      _mm256_storeu_ps(s + p, w);
      vsum = _mm256_add_ps(vsum, w);
    }
    float sum = HorizontalSum(vsum);
    for (; p < len; ++p) sum += (s[p] = std::exp(s[p] - mx));
    inv_sum[j] = 1.f / sum;
  }
  // Weighted V: up to 6 heads in 16-float chunks, or (GQA groups of 7 and more, as Qwen2-7B's)
  // up to 12 heads in 8-float chunks, so that one pass over the positions serves the group.
  if (a.heads <= 6) {
    WeightedV<6, 2>(a, 0, a.heads);
  } else {
    for (int32_t j0 = 0; j0 < a.heads; j0 += 12)
      WeightedV<12, 1>(a, j0, std::min(12, a.heads - j0));
  }
}

}  // namespace sluice::llm

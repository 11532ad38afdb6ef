#include "backends/llm/device/cpu/linear_kernel.h"

#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <vector>

#include "backends/llm/device/cpu/half.h"
#include "backends/llm/device/cpu/simd.h"

namespace sluice::llm {
namespace {

// Rows at or above which Linear runs as sgemm over converted tiles. (The GEMV up to 31 rows
// instead was slower on 2 cores: Qwen2-7B's q|k|v at 16 rows 7.1 -> 10.5 ms, and no faster
// for the demo model through the server; bench/RESULTS.md, session 5.)
constexpr int32_t kGemmRows = 8;

// CPUID leaf 1, ECX bit 29. (Clang 14's __builtin_cpu_supports has no "f16c".)
bool CpuHasF16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  return __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & bit_F16C) != 0;
}

const float* F16Table() {
  static const float* table = [] {
    auto* t = new float[65536];  // 256 KiB, built once, never freed (process lifetime)
    for (uint32_t i = 0; i < 65536; ++i) t[i] = F16ToF32(static_cast<uint16_t>(i));
    return t;
  }();
  return table;
}

// Portable dot products of fp32 activations with weights of each dtype.
float DotW(const float* x, const float* w, int32_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * w[i + l];
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += x[i] * w[i];
  return s;
}

float DotW(const float* x, const uint16_t* w, int32_t n, bool bf16) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const float* table = bf16 ? nullptr : F16Table();
  int32_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) acc[l] += x[i + l] * (bf16 ? Bf16ToF32(w[i + l]) : table[w[i + l]]);
  }
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; ++i) s += x[i] * (bf16 ? Bf16ToF32(w[i]) : table[w[i]]);
  return s;
}

// 8 weights at p as 8 floats.
struct LoadF32 {
  SLUICE_SIMD static __m256 Load(const float* p) { return _mm256_loadu_ps(p); }
};
struct LoadBf16 {
  SLUICE_SIMD static __m256 Load(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct LoadF16 {
  SLUICE_SIMD static __m256 Load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};

// AVX2 dot product over the first n & ~7 elements (the caller adds the tail).
template <typename L, typename T>
SLUICE_SIMD float DotSimd(const float* x, const T* w, int32_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  int32_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), L::Load(w + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), L::Load(w + i + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), L::Load(w + i + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), L::Load(w + i + 24), a3);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), L::Load(w + i), a0);
  return HorizontalSum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

SLUICE_SIMD float DotSimdF32(const float* x, const float* w, int32_t n) {
  float s = DotSimd<LoadF32>(x, w, n);
  for (int32_t i = n & ~7; i < n; ++i) s += x[i] * w[i];
  return s;
}

SLUICE_SIMD float DotSimdBf16(const float* x, const uint16_t* w, int32_t n) {
  float s = DotSimd<LoadBf16>(x, w, n);
  for (int32_t i = n & ~7; i < n; ++i) s += x[i] * Bf16ToF32(w[i]);
  return s;
}

SLUICE_SIMD float DotSimdF16(const float* x, const uint16_t* w, int32_t n) {
  float s = DotSimd<LoadF16>(x, w, n);
  const float* table = F16Table();
  for (int32_t i = n & ~7; i < n; ++i) s += x[i] * table[w[i]];
  return s;
}

float DotAny(bool simd, const float* x, DType wtype, const void* w, size_t offset, int32_t n) {
  switch (wtype) {
    case DType::kF32: {
      const float* p = static_cast<const float*>(w) + offset;
      return simd ? DotSimdF32(x, p, n) : DotW(x, p, n);
    }
    case DType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w) + offset;
      return simd ? DotSimdBf16(x, p, n) : DotW(x, p, n, true);
    }
    case DType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(w) + offset;
      return simd ? DotSimdF16(x, p, n) : DotW(x, p, n, false);
    }
    case DType::kI32:
      break;
  }
  assert(false && "weights are floating point");
  return 0.f;
}

}  // namespace

bool CpuHasSimd(CpuKernels kernels) {
  switch (kernels) {
    case CpuKernels::kPortable:
      return false;
    case CpuKernels::kAuto:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && CpuHasF16c();
  }
  return false;
}

void ConfigureBlasForPool() {
  openblas_set_num_threads(1);
}

float DotF32(bool simd, const float* a, const float* b, int32_t n) {
  return simd ? DotSimdF32(a, b, n) : DotW(a, b, n);
}

void WeightsToF32(DType wtype, const void* w, size_t offset, size_t n, float* dst) {
  switch (wtype) {
    case DType::kF32: {
      const float* src = static_cast<const float*>(w) + offset;
      std::copy(src, src + n, dst);
      return;
    }
    case DType::kBF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w) + offset;
      for (size_t i = 0; i < n; ++i) dst[i] = Bf16ToF32(src[i]);
      return;
    }
    case DType::kF16: {
      const uint16_t* src = static_cast<const uint16_t*>(w) + offset;
      const float* table = F16Table();
      for (size_t i = 0; i < n; ++i) dst[i] = table[src[i]];
      return;
    }
    case DType::kI32:
      break;
  }
  assert(false && "weights are floating point");
}

void LinearKernel(ThreadPool& pool, bool simd, const float* x, DType wtype, const void* w,
                  const float* bias, int32_t rows, int32_t in, int32_t out, float* y) {
  if (rows < kGemmRows) {
    constexpr int32_t kTile = 16;
    const int64_t tiles = (out + kTile - 1) / kTile;
    pool.ParallelFor(tiles, 1, [&](int64_t tb, int64_t te) {
      for (int32_t o = static_cast<int32_t>(tb * kTile); o < std::min<int64_t>(out, te * kTile);
           ++o) {
        const size_t offset = static_cast<size_t>(o) * in;
        for (int32_t r = 0; r < rows; ++r) {
          y[static_cast<size_t>(r) * out + o] =
              DotAny(simd, x + static_cast<size_t>(r) * in, wtype, w, offset, in) +
              (bias ? bias[o] : 0.f);
        }
      }
    });
    return;
  }
  // sgemm per tile of weight rows; enough tiles to keep every thread busy.
  const int32_t tile = std::clamp<int32_t>((out / (pool.threads() * 2) + 15) / 16 * 16, 16, 256);
  const int64_t tiles = (out + tile - 1) / tile;
  pool.ParallelFor(tiles, 1, [&](int64_t tb, int64_t te) {
    std::vector<float> scratch;
    for (int64_t t = tb; t < te; ++t) {
      const int32_t o0 = static_cast<int32_t>(t * tile);
      const int32_t n = std::min(tile, out - o0);
      const float* wt;
      if (wtype == DType::kF32) {
        wt = static_cast<const float*>(w) + static_cast<size_t>(o0) * in;
      } else {
        scratch.resize(static_cast<size_t>(n) * in);
        WeightsToF32(wtype, w, static_cast<size_t>(o0) * in, scratch.size(), scratch.data());
        wt = scratch.data();
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, n, in, 1.f, x, in, wt, in, 0.f,
                  y + o0, out);
      if (bias) {
        for (int32_t r = 0; r < rows; ++r) {
          float* yr = y + static_cast<size_t>(r) * out + o0;
          for (int32_t o = 0; o < n; ++o) yr[o] += bias[o0 + o];
        }
      }
    }
  });
}

}  // namespace sluice::llm

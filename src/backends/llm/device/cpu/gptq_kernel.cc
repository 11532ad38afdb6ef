#include "backends/llm/device/cpu/gptq_kernel.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "backends/llm/device/cpu/linear_kernel.h"

namespace sluice::llm {
namespace {

// Output columns a task owns, and input rows dequantized at a time (a multiple of every
// pack: 8 rows a word at 4 bits, 4 at 8 bits); the fp32 chunk is 32 KiB.
constexpr int32_t kTileCols = 64;
constexpr int32_t kChunkRows = 128;
// Up to this many rows, the chunk is added in row by row; more go through sgemm.
constexpr int32_t kAxpyMaxRows = 4;

void AddBias(const float* bias, int32_t rows, int32_t out, int32_t j0, int32_t tw, float* y) {
  if (bias == nullptr) return;
  for (int32_t m = 0; m < rows; ++m) {
    float* yr = y + static_cast<size_t>(m) * out + j0;
    for (int32_t jj = 0; jj < tw; ++jj) yr[jj] += bias[j0 + jj];
  }
}

uint32_t LoadWord(const void* base, size_t index) {
  uint32_t w;
  std::memcpy(&w, static_cast<const std::byte*>(base) + index * sizeof(uint32_t), sizeof(w));
  return w;
}

}  // namespace

Result<GptqWeight> PrepareGptqWeight(const GptqWeightSource& s) {
  RETURN_IF_ERROR(ValidateGptqWeightSource(s));
  const int32_t pack = 32 / s.bits;
  GptqWeight w;
  w.bits = s.bits;
  w.in = s.in;
  w.out = s.out;
  w.groups = s.groups;
  w.keep_alive = s.keep_alive;
  const size_t words = static_cast<size_t>(s.in / pack) * s.out;
  if (reinterpret_cast<uintptr_t>(s.qweight) % alignof(uint32_t) == 0) {
    w.qweight = static_cast<const uint32_t*>(s.qweight);
  } else {
    w.owned_qweight.resize(words);
    std::memcpy(w.owned_qweight.data(), s.qweight, words * sizeof(uint32_t));
    w.qweight = w.owned_qweight.data();
  }

  const size_t cells = static_cast<size_t>(s.groups) * s.out;
  std::vector<std::byte> raw(cells * DTypeSize(s.scales_dtype));
  std::memcpy(raw.data(), s.scales, raw.size());  // the file's copy may be misaligned
  w.scales.resize(cells);
  WeightsToF32(s.scales_dtype, raw.data(), 0, cells, w.scales.data());

  const uint32_t mask = (1u << s.bits) - 1;
  w.zeros.resize(cells);
  for (int32_t g = 0; g < s.groups; ++g) {
    for (int32_t j = 0; j < s.out; ++j) {
      const uint32_t word = LoadWord(s.qzeros, static_cast<size_t>(g) * (s.out / pack) + j / pack);
      const uint32_t z = (word >> (s.bits * (j % pack))) & mask;
      w.zeros[static_cast<size_t>(g) * s.out + j] = static_cast<float>(z) + s.zero_offset;
    }
  }

  w.g_idx.resize(s.in);
  if (s.g_idx == nullptr && s.group_size == 0) {
    return InvalidArgument("GPTQ weight: no g_idx and a group size of 0");
  }
  for (int32_t i = 0; i < s.in; ++i) {
    int32_t g = s.group_size < 0 ? 0 : i / std::max(s.group_size, 1);
    if (s.g_idx != nullptr) g = static_cast<int32_t>(LoadWord(s.g_idx, i));
    if (g < 0 || g >= s.groups) {
      return InvalidArgument("GPTQ weight: g_idx[" + std::to_string(i) + "] = " +
                             std::to_string(g) + " outside [0, " + std::to_string(s.groups) +
                             ")");
    }
    w.g_idx[i] = g;
  }
  const int32_t rows = s.group_size < 0 ? s.in : s.group_size;
  bool contiguous = rows > 0 && rows % pack == 0;
  for (int32_t i = 0; contiguous && i < s.in; ++i) contiguous = w.g_idx[i] == i / rows;
  w.group_rows = contiguous ? rows : 0;
  return w;
}

namespace {

// Columns a register tile holds; rows x tile accumulators stay in registers.
constexpr int32_t kRegCols = 16;

// y[m, j0 .. j0 + kRegCols) for M rows of a weight with contiguous groups (group_rows > 0).
template <int M>
inline void GroupedDecodeTile(const float* x, const GptqWeight& w, int32_t j0, float* y) {
  const int32_t in = w.in, out = w.out, bits = w.bits, pack = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  float acc[M][kRegCols] = {};
  for (int32_t i0 = 0, g = 0; i0 < in; i0 += w.group_rows, ++g) {
    const int32_t i1 = std::min(in, i0 + w.group_rows);
    float part[M][kRegCols] = {};
    float xsum[M] = {};
    for (int32_t p = i0 / pack; p < i1 / pack; ++p) {
      const uint32_t* words = w.qweight + static_cast<size_t>(p) * out + j0;
      for (int32_t k = 0; k < pack; ++k) {
        const int32_t i = p * pack + k;
        float xv[M];
        for (int m = 0; m < M; ++m) {
          xv[m] = x[static_cast<size_t>(m) * in + i];
          xsum[m] += xv[m];
        }
        const int shift = bits * k;
        for (int32_t jj = 0; jj < kRegCols; ++jj) {
          const float q = static_cast<float>((words[jj] >> shift) & mask);
          for (int m = 0; m < M; ++m) part[m][jj] += xv[m] * q;
        }
      }
    }
    const size_t cell = static_cast<size_t>(g) * out + j0;
    const float* scale = w.scales.data() + cell;
    const float* zero = w.zeros.data() + cell;
    for (int m = 0; m < M; ++m) {
      for (int32_t jj = 0; jj < kRegCols; ++jj) {
        acc[m][jj] += scale[jj] * (part[m][jj] - zero[jj] * xsum[m]);
      }
    }
  }
  for (int m = 0; m < M; ++m) {
    std::copy_n(acc[m], kRegCols, y + static_cast<size_t>(m) * out + j0);
  }
}

// The same with AVX2/FMA: 16 columns as two 8-lane vectors, each packed word shifted by
// `kBits` per row.
template <int M, int kBits>
__attribute__((target("avx2,fma"))) void GroupedDecodeTileSimd(const float* x,
                                                                const GptqWeight& w,
                                                                int32_t j0, float* y) {
  static_assert(kRegCols == 16, "two 8-float vectors");
  constexpr int kPack = 32 / kBits;
  const int32_t in = w.in, out = w.out;
  const __m256i mask = _mm256_set1_epi32((1 << kBits) - 1);
  __m256 acc[M][2];
  for (int m = 0; m < M; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  for (int32_t i0 = 0, g = 0; i0 < in; i0 += w.group_rows, ++g) {
    const int32_t i1 = std::min(in, i0 + w.group_rows);
    __m256 part[M][2];
    float xsum[M];
    for (int m = 0; m < M; ++m) {
      part[m][0] = part[m][1] = _mm256_setzero_ps();
      xsum[m] = 0.f;
    }
    for (int32_t p = i0 / kPack; p < i1 / kPack; ++p) {
      const uint32_t* words = w.qweight + static_cast<size_t>(p) * out + j0;
      __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words));
      __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 8));
      for (int k = 0; k < kPack; ++k) {
        const int32_t i = p * kPack + k;
        const __m256 q0 = _mm256_cvtepi32_ps(_mm256_and_si256(w0, mask));
        const __m256 q1 = _mm256_cvtepi32_ps(_mm256_and_si256(w1, mask));
        w0 = _mm256_srli_epi32(w0, kBits);
        w1 = _mm256_srli_epi32(w1, kBits);
        for (int m = 0; m < M; ++m) {
          const float xv = x[static_cast<size_t>(m) * in + i];
          xsum[m] += xv;
          const __m256 xb = _mm256_set1_ps(xv);
          part[m][0] = _mm256_fmadd_ps(xb, q0, part[m][0]);
          part[m][1] = _mm256_fmadd_ps(xb, q1, part[m][1]);
        }
      }
    }
    const size_t cell = static_cast<size_t>(g) * out + j0;
    const __m256 s0 = _mm256_loadu_ps(w.scales.data() + cell);
    const __m256 s1 = _mm256_loadu_ps(w.scales.data() + cell + 8);
    const __m256 z0 = _mm256_loadu_ps(w.zeros.data() + cell);
    const __m256 z1 = _mm256_loadu_ps(w.zeros.data() + cell + 8);
    for (int m = 0; m < M; ++m) {
      const __m256 xs = _mm256_set1_ps(xsum[m]);
      acc[m][0] = _mm256_fmadd_ps(s0, _mm256_fnmadd_ps(z0, xs, part[m][0]), acc[m][0]);
      acc[m][1] = _mm256_fmadd_ps(s1, _mm256_fnmadd_ps(z1, xs, part[m][1]), acc[m][1]);
    }
  }
  for (int m = 0; m < M; ++m) {
    _mm256_storeu_ps(y + static_cast<size_t>(m) * out + j0, acc[m][0]);
    _mm256_storeu_ps(y + static_cast<size_t>(m) * out + j0 + 8, acc[m][1]);
  }
}

template <int M>
void GroupedDecodeTileSimd(const float* x, const GptqWeight& w, int32_t j0, float* y) {
  if (w.bits == 4) return GroupedDecodeTileSimd<M, 4>(x, w, j0, y);
  GroupedDecodeTileSimd<M, 8>(x, w, j0, y);
}

void GroupedDecode(bool simd, const float* x, const GptqWeight& w, int32_t rows, int32_t j0,
                   float* y) {
  switch (rows) {
    case 1:
      return simd ? GroupedDecodeTileSimd<1>(x, w, j0, y) : GroupedDecodeTile<1>(x, w, j0, y);
    case 2:
      return simd ? GroupedDecodeTileSimd<2>(x, w, j0, y) : GroupedDecodeTile<2>(x, w, j0, y);
    case 3:
      return simd ? GroupedDecodeTileSimd<3>(x, w, j0, y) : GroupedDecodeTile<3>(x, w, j0, y);
    default:
      return simd ? GroupedDecodeTileSimd<4>(x, w, j0, y) : GroupedDecodeTile<4>(x, w, j0, y);
  }
}

}  // namespace

void GptqLinear(ThreadPool& pool, bool simd, const float* x, const GptqWeight& w,
                const float* bias, int32_t rows, float* y) {
  const int32_t in = w.in, out = w.out, bits = w.bits, pack = 32 / bits;
  const uint32_t mask = (1u << bits) - 1;
  const int64_t tiles = (out + kTileCols - 1) / kTileCols;
  const bool grouped = w.group_rows > 0 && rows <= kAxpyMaxRows;
  pool.ParallelFor(tiles, 1, [&](int64_t first, int64_t last) {
    std::vector<float> chunk(grouped ? 0 : static_cast<size_t>(kChunkRows) * kTileCols);
    for (int64_t t = first; t < last; ++t) {
      const int32_t j0 = static_cast<int32_t>(t) * kTileCols;
      const int32_t tw = std::min(kTileCols, out - j0);
      if (grouped && tw % kRegCols == 0) {
        for (int32_t jt = 0; jt < tw; jt += kRegCols) GroupedDecode(simd, x, w, rows, j0 + jt, y);
        AddBias(bias, rows, out, j0, tw, y);
        continue;
      }
      if (chunk.empty()) chunk.resize(static_cast<size_t>(kChunkRows) * kTileCols);
      for (int32_t m = 0; m < rows; ++m) {
        std::fill_n(y + static_cast<size_t>(m) * out + j0, tw, 0.f);
      }
      for (int32_t i0 = 0; i0 < in; i0 += kChunkRows) {
        const int32_t cr = std::min(kChunkRows, in - i0);  // a multiple of pack
        // Dequantize rows [i0, i0 + cr) of the tile's columns: chunk[ii, jj] = W[i0 + ii, j0 + jj].
        for (int32_t p = i0 / pack; p < (i0 + cr) / pack; ++p) {
          const uint32_t* words = w.qweight + static_cast<size_t>(p) * out + j0;
          for (int32_t k = 0; k < pack; ++k) {
            const int32_t i = p * pack + k;
            const size_t cell = static_cast<size_t>(w.g_idx[i]) * out + j0;
            const float* scale = w.scales.data() + cell;
            const float* zero = w.zeros.data() + cell;
            float* dst = chunk.data() + static_cast<size_t>(i - i0) * tw;
            const int shift = bits * k;
            for (int32_t jj = 0; jj < tw; ++jj) {
              dst[jj] = scale[jj] * (static_cast<float>((words[jj] >> shift) & mask) - zero[jj]);
            }
          }
        }
        if (rows <= kAxpyMaxRows) {
          for (int32_t m = 0; m < rows; ++m) {
            const float* xr = x + static_cast<size_t>(m) * in + i0;
            float* yr = y + static_cast<size_t>(m) * out + j0;
            for (int32_t ii = 0; ii < cr; ++ii) {
              const float a = xr[ii];
              const float* wr = chunk.data() + static_cast<size_t>(ii) * tw;
              for (int32_t jj = 0; jj < tw; ++jj) yr[jj] += a * wr[jj];
            }
          }
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, tw, cr, 1.f, x + i0, in,
                      chunk.data(), tw, 1.f, y + j0, out);
        }
      }
      AddBias(bias, rows, out, j0, tw, y);
    }
  });
}

}  // namespace sluice::llm

// The element-wise kernels of kernels.h (elementwise.cu) against plain C++ references, on fresh
// random inputs at several shapes: widths that take the 16-byte vector path and widths or
// pointer offsets that take the scalar one (STYLE.md §23). Copies and conversions must be
// bit-exact. The bf16 ops are referenced with the same roundings HF transformers does in bf16,
// so most outputs match bit for bit; the rest (a last-bit tie decided differently by a
// transcendental or a reduction order) must be within 2 bf16 ulps of the terms involved, and
// at most 1% of the elements may differ at all.

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::Bf16ToFloat;
using testing::DeviceArray;
using testing::FreshRng;
using testing::RandomBf16Values;
using testing::RoundBf16;
using testing::ToBf16;
using testing::ToFloat;

constexpr double kMaxInexactFraction = 0.01;

// Sticky or launch errors of the kernels issued so far.
cudaError_t Finish() {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) e = cudaDeviceSynchronize();
  return e;
}

uint16_t Bits(bf16 v) {
  return static_cast<__nv_bfloat16_raw>(v).x;
}
bf16 FromBits(uint16_t b) {
  __nv_bfloat16_raw raw;
  raw.x = b;
  return bf16(raw);
}

std::vector<bf16> RandomBits(std::mt19937_64& rng, size_t n) {
  std::uniform_int_distribution<uint32_t> d(0, 0xffff);
  std::vector<bf16> v(n);
  for (bf16& x : v) x = FromBits(static_cast<uint16_t>(d(rng)));
  return v;
}

// fp32 -> bf16 bits, round to nearest even (finite and infinite inputs; no NaN in the tests).
uint16_t F32ToBf16Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// IEEE half bits -> float (exact).
float F16BitsToFloat(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man == 0 ? INFINITY : NAN;
  } else {
    v = std::ldexp(static_cast<float>(man | 0x400), exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// Distance between adjacent bf16 values at |v| (8 significant bits).
float Bf16Ulp(float v) {
  v = std::abs(v);
  if (v < FLT_MIN) return std::ldexp(1.f, -133);  // subnormal spacing
  int e;
  std::frexp(v, &e);  // v in [2^(e-1), 2^e)
  return std::ldexp(1.f, e - 8);
}

// Bit equality of two bf16 arrays, reporting the first few differences.
void ExpectSameBits(const std::vector<bf16>& got, const std::vector<bf16>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (Bits(got[i]) == Bits(want[i])) continue;
    if (++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: got 0x" << std::hex << Bits(got[i]) << ", want 0x"
                    << Bits(want[i]) << std::dec;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": elements that differ, of " << got.size();
}

// |got - want| <= tol per element, and at most kMaxInexactFraction of them not bit-equal.
void ExpectNearBf16(const std::vector<bf16>& got_bf16, const std::vector<float>& want,
                    const std::vector<float>& tol, const std::string& what) {
  const std::vector<float> got = ToFloat(got_bf16);
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t inexact = 0, bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;
    ++inexact;
    if (!(std::abs(got[i] - want[i]) <= tol[i]) && ++bad <= 5) {
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", want " << want[i]
                    << " (tolerance " << tol[i] << ")";
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": elements out of tolerance, of " << got.size();
  EXPECT_LE(static_cast<double>(inexact), kMaxInexactFraction * static_cast<double>(got.size()))
      << what << ": too many elements not bit-equal to the reference";
}

// 2 bf16 ulps of the larger of got and want.
std::vector<float> TwoUlps(const std::vector<bf16>& got, const std::vector<float>& want) {
  std::vector<float> tol(want.size());
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    tol[i] = 2 * Bf16Ulp(std::max(std::abs(Bf16ToFloat(got[i])), std::abs(want[i])));
  }
  return tol;
}

std::string Shape(const char* fmt, int a, int b, int c = 0, int d = 0) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), fmt, a, b, c, d);
  return buf;
}

// --- ConvertToBf16 ---

TEST(ElementwiseKernelsTest, ConvertF32RoundsToNearestEven) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  std::uniform_int_distribution<uint32_t> bits(0, 0xffffffffu);
  // 9M elements loop the vector path's grid (4096 blocks x 256 threads x 8); the offset
  // pointers take the scalar path, whose grid loops past 1M.
  for (size_t n : {size_t{1}, size_t{7}, size_t{8}, size_t{9}, size_t{1000}, size_t{4099},
                   size_t{2'000'003}, size_t{9'000'005}}) {
    for (int offset : {0, 1}) {
      SCOPED_TRACE(Shape("n=%d offset=%d", static_cast<int>(n), offset));
      // Every bit pattern but NaN: subnormals, infinities, values that overflow bf16; every
      // fourth one an exact tie (low half 0x8000) to check ties-to-even.
      std::vector<float> src(n + offset);
      for (size_t i = 0; i < src.size(); ++i) {
        uint32_t u = bits(rng);
        if (i % 4 == 0) u = (u & 0xffff0000u) | 0x8000u;
        std::memcpy(&src[i], &u, sizeof(u));
        if (std::isnan(src[i])) src[i] = (i % 2) ? FLT_MAX : -0.f;
      }
      std::vector<bf16> want(n);
      for (size_t i = 0; i < n; ++i) want[i] = FromBits(F32ToBf16Bits(src[offset + i]));
      DeviceArray<float> d_src(src);
      DeviceArray<bf16> d_dst(n + offset);
      ConvertToBf16(d_src.get() + offset, 0, d_dst.get() + offset, n, nullptr);
      const cudaError_t e = Finish();
      SLUICE_CUDA_OK(e);
      std::vector<bf16> got = d_dst.Download();
      got.erase(got.begin(), got.begin() + offset);
      ExpectSameBits(got, want, "fp32->bf16");
    }
  }
}

TEST(ElementwiseKernelsTest, ConvertF16RoundsToNearestEven) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  // Every non-NaN half (10 mantissa bits round to 7), shuffled, then cut to each size.
  std::vector<uint16_t> all;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    if (((h >> 10) & 0x1f) == 31 && (h & 0x3ff) != 0) continue;
    all.push_back(static_cast<uint16_t>(h));
  }
  std::shuffle(all.begin(), all.end(), rng);
  for (size_t n : {size_t{1}, size_t{13}, size_t{64}, all.size() - 1}) {
    for (int offset : {0, 1}) {
      SCOPED_TRACE(Shape("n=%d offset=%d", static_cast<int>(n), offset));
      const std::vector<uint16_t> src(all.begin(), all.begin() + n + offset);
      std::vector<bf16> want(n);
      for (size_t i = 0; i < n; ++i) {
        want[i] = FromBits(F32ToBf16Bits(F16BitsToFloat(src[offset + i])));
      }
      DeviceArray<uint16_t> d_src(src);
      DeviceArray<bf16> d_dst(n + offset);
      ConvertToBf16(d_src.get() + offset, 2, d_dst.get() + offset, n, nullptr);
      const cudaError_t e = Finish();
      SLUICE_CUDA_OK(e);
      std::vector<bf16> got = d_dst.Download();
      got.erase(got.begin(), got.begin() + offset);
      ExpectSameBits(got, want, "fp16->bf16");
    }
  }
}

TEST(ElementwiseKernelsTest, ConvertBf16CopiesBits) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  for (size_t n : {size_t{1}, size_t{5}, size_t{4099}, size_t{1'000'003}}) {
    for (int offset : {0, 1}) {
      SCOPED_TRACE(Shape("n=%d offset=%d", static_cast<int>(n), offset));
      const std::vector<bf16> src = RandomBits(rng, n + offset);  // NaN payloads included
      DeviceArray<bf16> d_src(src);
      DeviceArray<bf16> d_dst(n + offset);
      ConvertToBf16(d_src.get() + offset, 1, d_dst.get() + offset, n, nullptr);
      const cudaError_t e = Finish();
      SLUICE_CUDA_OK(e);
      std::vector<bf16> got = d_dst.Download();
      got.erase(got.begin(), got.begin() + offset);
      ExpectSameBits(got, std::vector<bf16>(src.begin() + offset, src.end()), "bf16->bf16");
    }
  }
}

// --- Row copies ---

TEST(ElementwiseKernelsTest, EmbeddingCopiesTableRows) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  constexpr int32_t kVocab = 300;
  std::uniform_int_distribution<int32_t> token(0, kVocab - 1);
  for (int32_t hidden : {7, 64, 100, 896, 3584, 8192}) {
    for (int32_t rows : {1, 3, 17, 256}) {
      SCOPED_TRACE(Shape("hidden=%d rows=%d", hidden, rows));
      const std::vector<bf16> table = RandomBits(rng, static_cast<size_t>(kVocab) * hidden);
      std::vector<int32_t> tokens(rows);
      for (int32_t& t : tokens) t = token(rng);
      tokens[0] = kVocab - 1;  // the last row of the table
      std::vector<bf16> want(static_cast<size_t>(rows) * hidden);
      for (int32_t r = 0; r < rows; ++r) {
        std::copy_n(table.begin() + static_cast<size_t>(tokens[r]) * hidden, hidden,
                    want.begin() + static_cast<size_t>(r) * hidden);
      }
      DeviceArray<bf16> d_table(table);
      DeviceArray<int32_t> d_tokens(tokens);
      DeviceArray<bf16> d_out(want.size());
      Embedding(d_table.get(), d_tokens.get(), rows, hidden, d_out.get(), nullptr);
      const cudaError_t e = Finish();
      SLUICE_CUDA_OK(e);
      ExpectSameBits(d_out.Download(), want, "embedding");
    }
  }
}

TEST(ElementwiseKernelsTest, GatherRowsCopiesChosenRows) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  constexpr int32_t kSrcRows = 300;
  std::uniform_int_distribution<int32_t> pick(0, kSrcRows - 1);
  for (int32_t width : {7, 64, 100, 896, 3584, 8192}) {
    for (int32_t n : {1, 3, 17, 256}) {
      for (int offset : {0, 1}) {
        SCOPED_TRACE(Shape("width=%d n=%d offset=%d", width, n, offset));
        const std::vector<bf16> x = RandomBits(rng, static_cast<size_t>(kSrcRows) * width + 1);
        std::vector<int32_t> idx(n);
        for (int32_t& i : idx) i = pick(rng);  // repeats allowed
        idx[n - 1] = kSrcRows - 1;
        std::vector<bf16> want(static_cast<size_t>(n) * width);
        for (int32_t i = 0; i < n; ++i) {
          std::copy_n(x.begin() + offset + static_cast<size_t>(idx[i]) * width, width,
                      want.begin() + static_cast<size_t>(i) * width);
        }
        DeviceArray<bf16> d_x(x);
        DeviceArray<int32_t> d_idx(idx);
        DeviceArray<bf16> d_out(want.size() + 1);
        GatherRows(d_x.get() + offset, d_idx.get(), n, width, d_out.get() + offset, nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        std::vector<bf16> got = d_out.Download();
        got.erase(got.begin(), got.begin() + offset);
        got.resize(want.size());
        ExpectSameBits(got, want, "gather");
      }
    }
  }
}

// k and v either in separate [rows, kv_width] buffers or inside a fused [rows, q|k|v]
// projection (stride > kv_width); padding rows (slot -1) must leave the cache untouched.
TEST(ElementwiseKernelsTest, KvWriteFillsSlotsAndSkipsPadding) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  constexpr int32_t kBlockSize = 16;
  struct Heads {
    int32_t num_kv_heads, head_dim;
  };
  for (Heads h :
       {Heads{1, 64}, Heads{4, 128}, Heads{8, 128}, Heads{2, 36}, Heads{1, 100}, Heads{3, 6}}) {
    const int32_t kv_width = h.num_kv_heads * h.head_dim;
    for (int32_t rows : {1, 3, 17, 256}) {
      for (bool fused : {false, true}) {
        SCOPED_TRACE(Shape("kv_width=%d rows=%d fused=%d", kv_width, rows, fused));
        // Fused: q has 2 heads per kv head (GQA), k and v follow q in each row.
        const int32_t q_width = fused ? 2 * kv_width : 0;
        const int32_t stride = fused ? q_width + 2 * kv_width : kv_width;
        const int32_t num_blocks = (2 * rows + 3 + kBlockSize - 1) / kBlockSize;
        const int32_t num_slots = num_blocks * kBlockSize;
        std::vector<int32_t> perm(num_slots);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng);
        std::vector<int32_t> slots(perm.begin(), perm.begin() + rows);  // distinct
        // Row 0 always writes, row 1 is always padding, a quarter of the rest is padding.
        std::bernoulli_distribution pad(0.25);
        for (int32_t r = 1; r < rows; ++r) {
          if (r == 1 || pad(rng)) slots[r] = -1;
        }
        const size_t cache_size = static_cast<size_t>(num_slots) * kv_width;
        const std::vector<bf16> k_cache = RandomBits(rng, cache_size);
        const std::vector<bf16> v_cache = RandomBits(rng, cache_size);
        std::vector<bf16> kv_in;  // fused: the projection; else k then v
        if (fused) {
          kv_in = RandomBits(rng, static_cast<size_t>(rows) * stride);
        } else {
          kv_in = RandomBits(rng, 2 * static_cast<size_t>(rows) * kv_width);
        }
        const size_t k_off = fused ? q_width : 0;
        const size_t v_off = fused ? q_width + kv_width : static_cast<size_t>(rows) * kv_width;
        std::vector<bf16> want_k = k_cache, want_v = v_cache;
        for (int32_t r = 0; r < rows; ++r) {
          if (slots[r] < 0) continue;
          const size_t src = static_cast<size_t>(r) * stride;
          const size_t dst = static_cast<size_t>(slots[r]) * kv_width;
          std::copy_n(kv_in.begin() + k_off + src, kv_width, want_k.begin() + dst);
          std::copy_n(kv_in.begin() + v_off + src, kv_width, want_v.begin() + dst);
        }
        DeviceArray<bf16> d_in(kv_in);
        DeviceArray<int32_t> d_slots(slots);
        DeviceArray<bf16> d_k_cache(k_cache), d_v_cache(v_cache);
        KvWrite(d_in.get() + k_off, d_in.get() + v_off, stride, d_slots.get(), rows, kv_width,
                d_k_cache.get(), d_v_cache.get(), nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        ExpectSameBits(d_k_cache.Download(), want_k, "k_cache");
        ExpectSameBits(d_v_cache.Download(), want_v, "v_cache");
      }
    }
  }
}

// --- RmsNorm / AddRmsNorm ---

// HF's RMSNorm in bf16 on one row: y = bf16(x * rsqrt(mean(x^2) + eps)), out = bf16(w * y).
void RefNormRow(const float* x, const std::vector<float>& w, int32_t hidden, float eps,
                float* out) {
  double sum_sq = 0;
  for (int32_t i = 0; i < hidden; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float inv_rms = static_cast<float>(1.0 / std::sqrt(sum_sq / hidden + eps));
  for (int32_t i = 0; i < hidden; ++i) out[i] = RoundBf16(w[i] * RoundBf16(x[i] * inv_rms));
}

// Rows at three magnitudes, so that eps matters for some and the sum of squares is large for
// others.
std::vector<float> RandomRows(std::mt19937_64& rng, int32_t rows, int32_t hidden) {
  std::vector<float> x = RandomBf16Values(rng, static_cast<size_t>(rows) * hidden, -2.f, 2.f);
  const float scales[] = {1.f, 1e-3f, 40.f};
  for (int32_t r = 0; r < rows; ++r) {
    for (int32_t i = 0; i < hidden; ++i) {
      float& v = x[static_cast<size_t>(r) * hidden + i];
      v = RoundBf16(v * scales[r % 3]);
    }
  }
  return x;
}

// hidden > 16384 (8 packs a thread of 256) and hidden % 8 != 0 take the scalar kernel, as do
// offset pointers.
constexpr int32_t kNormHiddens[] = {17, 64, 100, 896, 3584, 4096, 5120, 8192, 16384, 20000};

TEST(ElementwiseKernelsTest, RmsNormMatchesHfBf16) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  for (int32_t hidden : kNormHiddens) {
    for (int32_t rows : {1, 3, 17, 256}) {
      for (int offset : {0, 1}) {
        if (offset == 1 && rows != 17) continue;
        SCOPED_TRACE(Shape("hidden=%d rows=%d offset=%d", hidden, rows, offset));
        const float eps = rows % 2 ? 1e-6f : 1e-5f;
        const std::vector<float> x = RandomRows(rng, rows, hidden);
        const std::vector<float> w = RandomBf16Values(rng, hidden, -2.f, 2.f);
        std::vector<float> want(x.size());
        for (int32_t r = 0; r < rows; ++r) {
          const size_t o = static_cast<size_t>(r) * hidden;
          RefNormRow(x.data() + o, w, hidden, eps, want.data() + o);
        }
        std::vector<bf16> x_dev(offset, FromBits(0));
        const std::vector<bf16> x_bf16 = ToBf16(x);
        x_dev.insert(x_dev.end(), x_bf16.begin(), x_bf16.end());
        DeviceArray<bf16> d_x(x_dev);
        DeviceArray<bf16> d_w(ToBf16(w));
        DeviceArray<bf16> d_out(x.size() + offset);
        RmsNorm(d_x.get() + offset, d_w.get(), rows, hidden, eps, d_out.get() + offset, nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        std::vector<bf16> got = d_out.Download();
        got.erase(got.begin(), got.begin() + offset);
        ExpectNearBf16(got, want, TwoUlps(got, want), "rmsnorm");
        ExpectSameBits(d_x.Download(), x_dev, "rmsnorm input (must be unchanged)");
      }
    }
  }
}

TEST(ElementwiseKernelsTest, AddRmsNormUpdatesResidualThenNormalises) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  for (int32_t hidden : kNormHiddens) {
    for (int32_t rows : {1, 3, 17, 256}) {
      for (int offset : {0, 1}) {
        if (offset == 1 && rows != 17) continue;
        SCOPED_TRACE(Shape("hidden=%d rows=%d offset=%d", hidden, rows, offset));
        const float eps = 1e-6f;
        const std::vector<float> residual = RandomRows(rng, rows, hidden);
        const std::vector<float> delta = RandomRows(rng, rows, hidden);
        const std::vector<float> w = RandomBf16Values(rng, hidden, -2.f, 2.f);
        std::vector<float> want_residual(residual.size()), want(residual.size());
        for (size_t i = 0; i < residual.size(); ++i) {
          want_residual[i] = RoundBf16(residual[i] + delta[i]);  // HF adds in bf16
        }
        for (int32_t r = 0; r < rows; ++r) {
          const size_t o = static_cast<size_t>(r) * hidden;
          RefNormRow(want_residual.data() + o, w, hidden, eps, want.data() + o);
        }
        // The offset shifts residual, delta and out alike.
        auto shifted = [&](const std::vector<float>& v) {
          std::vector<bf16> out(offset, FromBits(0));
          const std::vector<bf16> b = ToBf16(v);
          out.insert(out.end(), b.begin(), b.end());
          return out;
        };
        DeviceArray<bf16> d_residual(shifted(residual));
        DeviceArray<bf16> d_delta(shifted(delta));
        DeviceArray<bf16> d_w(ToBf16(w));
        DeviceArray<bf16> d_out(residual.size() + offset);
        AddRmsNorm(d_residual.get() + offset, d_delta.get() + offset, d_w.get(), rows, hidden, eps,
                   d_out.get() + offset, nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        std::vector<bf16> got_residual = d_residual.Download();
        got_residual.erase(got_residual.begin(), got_residual.begin() + offset);
        ExpectSameBits(got_residual, ToBf16(want_residual), "residual");
        std::vector<bf16> got = d_out.Download();
        got.erase(got.begin(), got.begin() + offset);
        ExpectNearBf16(got, want, TwoUlps(got, want), "add_rmsnorm");
      }
    }
  }
}

// --- Rope ---

// HF's default inv_freq, computed in fp32: 1 / base^(2i / d).
std::vector<float> InvFreq(int32_t head_dim, float base) {
  std::vector<float> f(head_dim / 2);
  for (int32_t i = 0; i < head_dim / 2; ++i) {
    f[i] = 1.f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  }
  return f;
}

TEST(ElementwiseKernelsTest, RopeMatchesHfBf16) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  struct Heads {
    int32_t num_q_heads, num_kv_heads, head_dim;
  };
  // Qwen2-0.5B, Qwen2-7B, Llama-3-8B GQA shapes; MHA; head_dim 80/96 (half % 8 == 0) and
  // 36/6 (scalar kernel).
  const Heads shapes[] = {{1, 1, 64},  {8, 8, 64}, {14, 2, 64}, {28, 4, 128}, {32, 8, 128},
                          {16, 2, 80}, {4, 1, 96}, {2, 1, 36},  {3, 1, 6}};
  std::uniform_int_distribution<int32_t> position(0, 32767);
  for (const Heads& h : shapes) {
    const float base = h.head_dim == 128 ? 1e6f : 1e4f;
    const std::vector<float> inv_freq = InvFreq(h.head_dim, base);
    const int32_t half = h.head_dim / 2;
    for (int32_t rows : {1, 3, 17, 256}) {
      for (int offset : {0, 1}) {
        if (offset == 1 && rows != 3) continue;
        SCOPED_TRACE(Shape("q_heads=%d kv_heads=%d head_dim=%d rows=%d", h.num_q_heads,
                           h.num_kv_heads, h.head_dim, rows) +
                     (offset ? " offset=1" : ""));
        std::vector<int32_t> positions(rows);
        for (int32_t& p : positions) p = position(rng);
        positions[0] = 0;
        positions[rows - 1] = rows > 1 ? 32767 : positions[0];
        const size_t q_size = static_cast<size_t>(rows) * h.num_q_heads * h.head_dim;
        const size_t k_size = static_cast<size_t>(rows) * h.num_kv_heads * h.head_dim;
        const std::vector<float> q = RandomBf16Values(rng, q_size, -3.f, 3.f);
        const std::vector<float> k = RandomBf16Values(rng, k_size, -3.f, 3.f);

        std::vector<float> want_q(q), want_k(k), tol_q(q_size), tol_k(k_size);
        std::vector<float> c(half), s(half);
        // Rotates one head in place; the tolerance allows cos/sin rounded one bf16 ulp apart
        // from the device's sincosf (2 ulps of each product, then of the sum).
        auto rotate = [&](float* v, float* tol) {
          for (int32_t i = 0; i < half; ++i) {
            const float x1 = v[i], x2 = v[i + half];
            const float a = RoundBf16(x1 * c[i]), b = RoundBf16(x2 * s[i]);
            const float a2 = RoundBf16(x2 * c[i]), b2 = RoundBf16(x1 * s[i]);
            v[i] = RoundBf16(a - b);
            v[i + half] = RoundBf16(a2 + b2);
            tol[i] = 2 * (Bf16Ulp(a) + Bf16Ulp(b) + Bf16Ulp(v[i]));
            tol[i + half] = 2 * (Bf16Ulp(a2) + Bf16Ulp(b2) + Bf16Ulp(v[i + half]));
          }
        };
        for (int32_t r = 0; r < rows; ++r) {
          for (int32_t i = 0; i < half; ++i) {
            const float angle = static_cast<float>(positions[r]) * inv_freq[i];  // fp32, as HF
            c[i] = RoundBf16(static_cast<float>(std::cos(static_cast<double>(angle))));
            s[i] = RoundBf16(static_cast<float>(std::sin(static_cast<double>(angle))));
          }
          for (int32_t hd = 0; hd < h.num_q_heads; ++hd) {
            const size_t o = (static_cast<size_t>(r) * h.num_q_heads + hd) * h.head_dim;
            rotate(want_q.data() + o, tol_q.data() + o);
          }
          for (int32_t hd = 0; hd < h.num_kv_heads; ++hd) {
            const size_t o = (static_cast<size_t>(r) * h.num_kv_heads + hd) * h.head_dim;
            rotate(want_k.data() + o, tol_k.data() + o);
          }
        }
        std::vector<bf16> q_dev(offset, FromBits(0)), k_dev(offset, FromBits(0));
        const std::vector<bf16> qb = ToBf16(q), kb = ToBf16(k);
        q_dev.insert(q_dev.end(), qb.begin(), qb.end());
        k_dev.insert(k_dev.end(), kb.begin(), kb.end());
        DeviceArray<bf16> d_q(q_dev), d_k(k_dev);
        DeviceArray<int32_t> d_pos(positions);
        DeviceArray<float> d_inv_freq(inv_freq);
        Rope(d_q.get() + offset, d_k.get() + offset, d_pos.get(), d_inv_freq.get(), rows,
             h.num_q_heads, h.num_kv_heads, h.head_dim, nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        std::vector<bf16> got_q = d_q.Download(), got_k = d_k.Download();
        got_q.erase(got_q.begin(), got_q.begin() + offset);
        got_k.erase(got_k.begin(), got_k.begin() + offset);
        ExpectNearBf16(got_q, want_q, tol_q, "rope q");
        ExpectNearBf16(got_k, want_k, tol_k, "rope k");
      }
    }
  }
}

// --- SiluMul ---

TEST(ElementwiseKernelsTest, SiluMulMatchesHfBf16) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  for (int32_t width : {7, 64, 100, 896, 4864, 18944}) {
    for (int32_t rows : {1, 3, 17, 256}) {
      for (bool fused : {false, true}) {
        SCOPED_TRACE(Shape("width=%d rows=%d fused=%d", width, rows, fused));
        // Separate: gate then up, each [rows, width]. Fused: [rows, gate | up].
        const int32_t stride = fused ? 2 * width : width;
        const size_t n = static_cast<size_t>(rows) * width;
        std::vector<float> in = RandomBf16Values(rng, 2 * n, -2.f, 2.f);
        const size_t gate_off = 0;
        const size_t up_off = fused ? static_cast<size_t>(width) : n;
        std::vector<float> want(n);
        for (int32_t r = 0; r < rows; ++r) {
          for (int32_t i = 0; i < width; ++i) {
            const size_t src = static_cast<size_t>(r) * stride + i;
            float& g = in[gate_off + src];
            g = RoundBf16(g * 6.f);  // gates in [-12, 12]: silu saturates at both ends
            const float u = in[up_off + src];
            const float silu = RoundBf16(g / (1.f + std::exp(-g)));  // HF's act_fn, in bf16
            want[static_cast<size_t>(r) * width + i] = RoundBf16(silu * u);
          }
        }
        DeviceArray<bf16> d_in(ToBf16(in));
        DeviceArray<bf16> d_out(n);
        SiluMul(d_in.get() + gate_off, d_in.get() + up_off, rows, width, stride, d_out.get(),
                nullptr);
        const cudaError_t e = Finish();
        SLUICE_CUDA_OK(e);
        const std::vector<bf16> got = d_out.Download();
        ExpectNearBf16(got, want, TwoUlps(got, want), "silu_mul");
      }
    }
  }
}

// --- Launch properties ---

TEST(ElementwiseKernelsTest, EmptyShapesLaunchNothing) {
  SLUICE_REQUIRE_GPU();
  ConvertToBf16(nullptr, 0, nullptr, 0, nullptr);
  Embedding(nullptr, nullptr, 0, 64, nullptr, nullptr);
  RmsNorm(nullptr, nullptr, 0, 64, 1e-6f, nullptr, nullptr);
  AddRmsNorm(nullptr, nullptr, nullptr, 0, 64, 1e-6f, nullptr, nullptr);
  Rope(nullptr, nullptr, nullptr, nullptr, 0, 4, 1, 64, nullptr);
  SiluMul(nullptr, nullptr, 0, 64, 64, nullptr, nullptr);
  KvWrite(nullptr, nullptr, 64, nullptr, 0, 64, nullptr, nullptr, nullptr);
  GatherRows(nullptr, nullptr, 0, 64, nullptr, nullptr);
  const cudaError_t e = Finish();
  SLUICE_CUDA_OK(e);
}

// RAII for the capture test.
struct Stream {
  cudaStream_t s = nullptr;
  Stream() { cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); }
  ~Stream() { cudaStreamDestroy(s); }
};
struct GraphExec {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~GraphExec() {
    if (exec != nullptr) cudaGraphExecDestroy(exec);
    if (graph != nullptr) cudaGraphDestroy(graph);
  }
};

// A decoder layer's worth of these ops, captured once into a CUDA graph (which fails if any
// launch synchronises, allocates or copies), then replayed on new inputs written to the same
// addresses: the graph's outputs must equal those of eager launches on the same inputs.
TEST(ElementwiseKernelsTest, CapturedGraphReplaysLikeEagerLaunches) {
  SLUICE_REQUIRE_GPU();
  auto rng = FreshRng();
  constexpr int32_t kRows = 5, kVocab = 64, kHidden = 896, kInter = 4864;
  constexpr int32_t kQHeads = 14, kKvHeads = 2, kHeadDim = 64, kSlots = 64;
  constexpr int32_t kKvWidth = kKvHeads * kHeadDim;
  const std::vector<int32_t> logit_rows = {4, 1};

  DeviceArray<float> table_f32(static_cast<size_t>(kVocab) * kHidden);
  DeviceArray<bf16> table(table_f32.size()), w_norm(kHidden), residual(kRows * kHidden),
      normed(kRows * kHidden), normed2(kRows * kHidden), q(kRows * kQHeads * kHeadDim),
      k(kRows * kKvWidth), v(kRows * kKvWidth), gate_up(kRows * 2 * kInter), act(kRows * kInter),
      k_cache(kSlots * kKvWidth), v_cache(kSlots * kKvWidth), gathered(logit_rows.size() * kHidden);
  DeviceArray<int32_t> tokens(kRows), positions(kRows), slots(kRows), d_logit_rows(logit_rows);
  DeviceArray<float> inv_freq(InvFreq(kHeadDim, 1e6f));

  auto issue = [&](cudaStream_t s) {
    ConvertToBf16(table_f32.get(), 0, table.get(), table_f32.size(), s);
    Embedding(table.get(), tokens.get(), kRows, kHidden, residual.get(), s);
    RmsNorm(residual.get(), w_norm.get(), kRows, kHidden, 1e-6f, normed.get(), s);
    Rope(q.get(), k.get(), positions.get(), inv_freq.get(), kRows, kQHeads, kKvHeads, kHeadDim, s);
    KvWrite(k.get(), v.get(), kKvWidth, slots.get(), kRows, kKvWidth, k_cache.get(), v_cache.get(),
            s);
    AddRmsNorm(residual.get(), normed.get(), w_norm.get(), kRows, kHidden, 1e-6f, normed2.get(), s);
    SiluMul(gate_up.get(), gate_up.get() + kInter, kRows, kInter, 2 * kInter, act.get(), s);
    GatherRows(residual.get(), d_logit_rows.get(), static_cast<int32_t>(logit_rows.size()), kHidden,
               gathered.get(), s);
  };
  // New contents for every input (tokens, positions, slots with one padding row, weights,
  // activations, caches) at the same addresses.
  auto upload_inputs = [&](uint64_t seed) {
    std::mt19937_64 r(seed);
    table_f32.Upload(RandomBf16Values(r, table_f32.size(), -1.f, 1.f));
    w_norm.Upload(ToBf16(RandomBf16Values(r, kHidden, -2.f, 2.f)));
    q.Upload(ToBf16(RandomBf16Values(r, q.size(), -3.f, 3.f)));
    k.Upload(ToBf16(RandomBf16Values(r, k.size(), -3.f, 3.f)));
    v.Upload(RandomBits(r, v.size()));
    gate_up.Upload(ToBf16(RandomBf16Values(r, gate_up.size(), -6.f, 6.f)));
    k_cache.Upload(RandomBits(r, k_cache.size()));
    v_cache.Upload(RandomBits(r, v_cache.size()));
    std::vector<int32_t> tok(kRows), pos(kRows), slot(kSlots);
    std::uniform_int_distribution<int32_t> pick_token(0, kVocab - 1), pick_pos(0, 32767);
    for (int32_t i = 0; i < kRows; ++i) {
      tok[i] = pick_token(r);
      pos[i] = pick_pos(r);
    }
    std::iota(slot.begin(), slot.end(), 0);
    std::shuffle(slot.begin(), slot.end(), r);
    slot.resize(kRows);
    slot[2] = -1;
    tokens.Upload(tok);
    positions.Upload(pos);
    slots.Upload(slot);
  };
  auto outputs = [&] {
    std::vector<std::vector<bf16>> o;
    for (auto* a :
         {&table, &residual, &normed, &normed2, &q, &k, &act, &k_cache, &v_cache, &gathered}) {
      o.push_back(a->Download());
    }
    return o;
  };

  Stream stream;
  ASSERT_NE(stream.s, nullptr);
  GraphExec g;
  SLUICE_CUDA_OK(cudaStreamBeginCapture(stream.s, cudaStreamCaptureModeGlobal));
  issue(stream.s);
  SLUICE_CUDA_OK(cudaStreamEndCapture(stream.s, &g.graph));
  SLUICE_CUDA_OK(cudaGraphInstantiate(&g.exec, g.graph, 0));

  std::uniform_int_distribution<uint64_t> seeds;
  for (int replay = 0; replay < 2; ++replay) {
    SCOPED_TRACE(Shape("replay=%d", replay, 0));
    const uint64_t seed = seeds(rng);
    upload_inputs(seed);
    issue(stream.s);
    SLUICE_CUDA_OK(cudaStreamSynchronize(stream.s));
    const auto eager = outputs();
    upload_inputs(seed);
    SLUICE_CUDA_OK(cudaGraphLaunch(g.exec, stream.s));
    SLUICE_CUDA_OK(cudaStreamSynchronize(stream.s));
    const auto replayed = outputs();
    const char* names[] = {"table", "residual", "normed",  "normed2", "q",
                           "k",     "act",      "k_cache", "v_cache", "gathered"};
    for (size_t i = 0; i < eager.size(); ++i) ExpectSameBits(replayed[i], eager[i], names[i]);
  }
}

}  // namespace
}  // namespace sluice::llm::cuda

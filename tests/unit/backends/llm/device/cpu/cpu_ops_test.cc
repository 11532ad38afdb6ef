// Every CPU op against a straightforward double-precision reference, at several shapes,
// with fresh random inputs (STYLE.md §23). fp32 tolerance: max |got - ref| / max |ref|
// <= 1e-4. Weights in bf16 and fp16 are compared against the reference on their rounded
// values, since the device computes them in fp32.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>
#include <vector>

#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/device/cpu/half.h"
#include "backends/llm/device/cpu/thread_pool.h"

namespace sluice::llm {
namespace {

constexpr double kTol = 1e-4;

double RelErr(const std::vector<float>& got, const std::vector<double>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double max_diff = 0, max_ref = 1e-30;
  for (size_t i = 0; i < std::min(got.size(), ref.size()); ++i) {
    max_diff = std::max(max_diff, std::abs(got[i] - ref[i]));
    max_ref = std::max(max_ref, std::abs(ref[i]));
  }
  return max_diff / max_ref;
}

class CpuOpsTest : public ::testing::TestWithParam<std::tuple<int, CpuKernels>> {
 protected:
  void SetUp() override {
    auto d =
        CreateCpuDevice({.threads = std::get<0>(GetParam()), .kernels = std::get<1>(GetParam())});
    ASSERT_TRUE(d.ok());
    dev_ = std::move(*d);
    rng_.seed(std::random_device{}());
  }

  std::vector<float> Random(size_t n, float scale = 1.f) {
    std::normal_distribution<float> dist(0.f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng_);
    return v;
  }

  std::unique_ptr<Buffer> F32Buffer(const std::vector<float>& v) {
    auto b = dev_->Allocate(DType::kF32, v.size());
    EXPECT_TRUE(b.ok());
    EXPECT_TRUE(dev_->Upload(**b, v.data(), v.size() * sizeof(float)).ok());
    return std::move(*b);
  }
  std::unique_ptr<Buffer> Empty(size_t n) { return dev_->Allocate(DType::kF32, n).value(); }
  std::vector<float> Read(const Buffer& b) {
    std::vector<float> v(b.elements());
    EXPECT_TRUE(dev_->Download(b, v.data(), v.size() * sizeof(float)).ok());
    return v;
  }

  // A weight of `dtype` holding `v` rounded to that dtype; `v` is updated to the rounded
  // values so that the reference uses exactly what the device sees.
  std::unique_ptr<Buffer> Weight(DType dtype, std::vector<float>& v) {
    if (dtype == DType::kF32) return F32Buffer(v);
    std::vector<uint16_t> bits(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      bits[i] = dtype == DType::kBF16 ? F32ToBf16(v[i]) : F32ToF16(v[i]);
      v[i] = dtype == DType::kBF16 ? Bf16ToF32(bits[i]) : F16ToF32(bits[i]);
    }
    auto b = dev_->Allocate(dtype, v.size());
    EXPECT_TRUE(b.ok());
    EXPECT_TRUE(dev_->Upload(**b, bits.data(), bits.size() * 2).ok());
    return std::move(*b);
  }

  // A step of `rows` rows with the given positions and one sequence covering them all.
  void SimpleStep(const std::vector<int32_t>& tokens, const std::vector<int32_t>& positions) {
    StepMetadata s;
    s.tokens = tokens;
    s.positions = positions;
    s.slots.assign(tokens.size(), 0);
    s.seqs.push_back({0, static_cast<int32_t>(tokens.size()), 0, 0, 0});
    s.block_size = 16;
    ASSERT_TRUE(dev_->BeginStep(s).ok());
  }

  std::unique_ptr<Device> dev_;
  std::mt19937 rng_;
};

TEST(HalfTest, ConversionsRoundTrip) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = F16ToF32(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    EXPECT_EQ(F32ToF16(f), b) << b;
    const float g = Bf16ToF32(static_cast<uint16_t>(b));
    if (!std::isnan(g)) {
      EXPECT_EQ(F32ToBf16(g), b) << b;
    }
  }
  EXPECT_EQ(F16ToF32(0x3c00), 1.f);
  EXPECT_EQ(F16ToF32(0xc000), -2.f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.f, -24));
  EXPECT_EQ(Bf16ToF32(0x3f80), 1.f);
}

TEST(ThreadPoolTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 7, 1000, 12345}) {
      std::vector<int> hits(static_cast<size_t>(n), 0);
      pool.ParallelFor(n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) ++hits[i];
      });
      EXPECT_TRUE(std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; }))
          << "threads " << threads << " n " << n;
    }
  }
}

// Back-to-back calls (workers still spinning) and calls after pauses longer than the spin
// (workers asleep, woken through the condition variable), with work of every size: each
// call covers every index exactly once and returns only after all of it ran.
TEST(ThreadPoolTest, SpinningAndSleepingWorkersHandOffEveryCall) {
  for (int threads : {2, 4}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> hits(5000);
    for (int call = 0; call < 400; ++call) {
      const int64_t n = 1 + (call * 7919) % 5000;
      for (int64_t i = 0; i < n; ++i) hits[i].store(0, std::memory_order_relaxed);
      pool.ParallelFor(n, 1 + call % 17, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1, std::memory_order_relaxed);
      });
      int64_t wrong = 0;
      for (int64_t i = 0; i < n; ++i) wrong += hits[i].load(std::memory_order_relaxed) != 1;
      ASSERT_EQ(wrong, 0) << "threads " << threads << " call " << call << " n " << n;
      if (call % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
}

TEST_P(CpuOpsTest, Linear) {
  struct Shape {
    int rows, in, out;
  };
  // Below 8 rows the GEMV path, from 8 the sgemm path; sizes off multiples of 8 and 32.
  for (Shape sh : {Shape{1, 64, 48}, Shape{3, 100, 33}, Shape{7, 71, 300}, Shape{8, 64, 16},
                   Shape{17, 256, 130}, Shape{40, 37, 16}, Shape{2, 9, 1}, Shape{1, 1000, 70}}) {
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
      for (bool with_bias : {false, true}) {
        auto x = Random(size_t(sh.rows) * sh.in);
        auto w = Random(size_t(sh.out) * sh.in, 0.2f);
        auto b = Random(sh.out);
        auto xb = F32Buffer(x);
        auto wb = Weight(dt, w);
        auto bb = Weight(dt, b);
        auto y = Empty(size_t(sh.rows) * sh.out);
        dev_->Linear(*xb, *wb, with_bias ? bb.get() : nullptr, sh.rows, sh.in, sh.out, *y);
        std::vector<double> ref(size_t(sh.rows) * sh.out);
        for (int r = 0; r < sh.rows; ++r) {
          for (int o = 0; o < sh.out; ++o) {
            double s = with_bias ? b[o] : 0.0;
            for (int i = 0; i < sh.in; ++i) s += double(x[r * sh.in + i]) * w[o * sh.in + i];
            ref[r * sh.out + o] = s;
          }
        }
        EXPECT_LE(RelErr(Read(*y), ref), kTol) << sh.rows << "x" << sh.in << "x" << sh.out << " "
                                               << DTypeName(dt) << " bias " << with_bias;
      }
    }
  }
}

TEST_P(CpuOpsTest, RmsNormAndAddRmsNorm) {
  for (int rows : {1, 5, 33}) {
    for (int hidden : {8, 64, 200}) {
      for (DType dt : {DType::kF32, DType::kBF16}) {
        const float eps = 1e-6f;
        auto x = Random(size_t(rows) * hidden, 3.f);
        auto delta = Random(size_t(rows) * hidden);
        auto w = Random(hidden);
        auto wb = Weight(dt, w);
        auto xb = F32Buffer(x);
        auto db = F32Buffer(delta);
        auto out = Empty(x.size());
        dev_->RmsNorm(*xb, *wb, rows, hidden, eps, *out);
        auto norm_ref = [&](const std::vector<double>& in) {
          std::vector<double> ref(in.size());
          for (int r = 0; r < rows; ++r) {
            double ss = 0;
            for (int i = 0; i < hidden; ++i) ss += in[r * hidden + i] * in[r * hidden + i];
            const double inv = 1.0 / std::sqrt(ss / hidden + eps);
            for (int i = 0; i < hidden; ++i) ref[r * hidden + i] = w[i] * in[r * hidden + i] * inv;
          }
          return ref;
        };
        std::vector<double> xd(x.begin(), x.end());
        EXPECT_LE(RelErr(Read(*out), norm_ref(xd)), kTol) << rows << "x" << hidden;

        dev_->AddRmsNorm(*xb, *db, *wb, rows, hidden, eps, *out);
        std::vector<double> sum(x.size());
        for (size_t i = 0; i < x.size(); ++i) sum[i] = double(x[i]) + delta[i];
        EXPECT_LE(RelErr(Read(*xb), sum), kTol);
        EXPECT_LE(RelErr(Read(*out), norm_ref(sum)), kTol) << rows << "x" << hidden;
      }
    }
  }
}

TEST_P(CpuOpsTest, Embedding) {
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    const int vocab = 50, hidden = 24;
    auto table = Random(size_t(vocab) * hidden);
    auto tb = Weight(dt, table);
    std::vector<int32_t> tokens = {3, 0, 49, 3, 17};
    SimpleStep(tokens, {0, 1, 2, 3, 4});
    auto out = Empty(tokens.size() * hidden);
    dev_->Embedding(*tb, hidden, *out);
    auto got = Read(*out);
    for (size_t r = 0; r < tokens.size(); ++r) {
      for (int i = 0; i < hidden; ++i)
        ASSERT_EQ(got[r * hidden + i], table[tokens[r] * hidden + i]);
    }
  }
}

TEST_P(CpuOpsTest, RopeNeoxStyle) {
  for (int head_dim : {4, 16, 64}) {
    for (int rows : {1, 7}) {
      const int nq = 4, nkv = 2;
      RopeSpec rope;
      rope.head_dim = head_dim;
      for (int i = 0; i < head_dim / 2; ++i)
        rope.inv_freq.push_back(std::pow(10000.0, -2.0 * i / head_dim));
      std::vector<int32_t> positions;
      std::uniform_int_distribution<int> pos(0, 4000);
      for (int r = 0; r < rows; ++r) positions.push_back(pos(rng_));
      SimpleStep(std::vector<int32_t>(rows, 0), positions);
      auto q = Random(size_t(rows) * nq * head_dim);
      auto k = Random(size_t(rows) * nkv * head_dim);
      auto qb = F32Buffer(q), kb = F32Buffer(k);
      dev_->Rope(*qb, *kb, nq, nkv, rope);
      auto ref = [&](const std::vector<float>& v, int heads) {
        std::vector<double> out(v.size());
        const int half = head_dim / 2;
        for (int r = 0; r < rows; ++r) {
          for (int h = 0; h < heads; ++h) {
            const size_t base = (size_t(r) * heads + h) * head_dim;
            for (int i = 0; i < head_dim; ++i) {
              // HF: x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1).
              const double a = positions[r] * rope.inv_freq[i % half];
              const double rot =
                  i < half ? -double(v[base + i + half]) : double(v[base + i - half]);
              out[base + i] = v[base + i] * std::cos(a) + rot * std::sin(a);
            }
          }
        }
        return out;
      };
      EXPECT_LE(RelErr(Read(*qb), ref(q, nq)), kTol);
      EXPECT_LE(RelErr(Read(*kb), ref(k, nkv)), kTol);
    }
  }
}

TEST_P(CpuOpsTest, SiluMul) {
  for (int rows : {1, 3, 50}) {
    for (int width : {5, 128, 1000}) {
      auto g = Random(size_t(rows) * width, 4.f);
      auto u = Random(size_t(rows) * width);
      auto gb = F32Buffer(g), ub = F32Buffer(u);
      auto out = Empty(g.size());
      dev_->SiluMul(*gb, *ub, rows, width, *out);
      std::vector<double> ref(g.size());
      for (size_t i = 0; i < g.size(); ++i) ref[i] = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
      EXPECT_LE(RelErr(Read(*out), ref), kTol);
    }
  }
}

TEST_P(CpuOpsTest, GatherRows) {
  const int width = 10;
  auto x = Random(6 * width);
  auto xb = F32Buffer(x);
  StepMetadata s;
  s.tokens.assign(6, 0);
  s.positions = {0, 1, 2, 3, 4, 5};
  s.slots.assign(6, 0);
  s.seqs.push_back({0, 6, 0, 0, 0});
  s.logit_rows = {5, 0, 3};
  ASSERT_TRUE(dev_->BeginStep(s).ok());
  auto out = Empty(3 * width);
  dev_->GatherRows(*xb, width, *out);
  auto got = Read(*out);
  for (int i = 0; i < 3; ++i) {
    for (int c = 0; c < width; ++c) EXPECT_EQ(got[i * width + c], x[s.logit_rows[i] * width + c]);
  }
}

// Paged KV write and attention for a step mixing a decode, a prefill chunk after cached
// tokens, and a fresh prefill, with GQA and scattered block tables.
TEST_P(CpuOpsTest, PagedKvWriteAndAttention) {
  struct Case {
    int nq, nkv, head_dim, block_size;
  };
  // Groups of 2 to 16 q heads a kv head (the AVX2 kernel weighs V for 6, or up to 12, at once).
  for (Case c : {Case{4, 2, 16, 16}, Case{8, 1, 32, 4}, Case{2, 2, 8, 16}, Case{6, 3, 64, 1},
                 Case{16, 1, 16, 16}}) {
    struct Seq {
      int cached, fresh;
    };
    const std::vector<Seq> seqs = {{37, 1}, {5, 12}, {0, 20}, {15, 2}};
    const int kv_width = c.nkv * c.head_dim;
    const int bs = c.block_size;
    int blocks_total = 0;
    for (auto s : seqs) blocks_total += (s.cached + s.fresh + bs - 1) / bs;
    const int num_blocks = blocks_total + 5;
    std::vector<int32_t> pool(num_blocks);
    std::iota(pool.begin(), pool.end(), 0);
    std::shuffle(pool.begin(), pool.end(), rng_);

    // Host copies of the cache; cached positions get random K/V in their slots.
    auto k_cache = Random(size_t(num_blocks) * bs * kv_width);
    auto v_cache = Random(size_t(num_blocks) * bs * kv_width);
    StepMetadata step;
    step.block_size = bs;
    std::vector<std::vector<int32_t>> tables;
    size_t next_block = 0;
    int rows = 0;
    for (auto s : seqs) {
      const int ctx = s.cached + s.fresh;
      std::vector<int32_t> table(pool.begin() + next_block,
                                 pool.begin() + next_block + (ctx + bs - 1) / bs);
      next_block += table.size();
      StepSequence ss{rows, s.fresh, s.cached, static_cast<int32_t>(step.block_tables.size()),
                      static_cast<int32_t>(table.size())};
      step.seqs.push_back(ss);
      step.block_tables.insert(step.block_tables.end(), table.begin(), table.end());
      for (int j = 0; j < s.fresh; ++j) {
        const int p = s.cached + j;
        step.tokens.push_back(0);
        step.positions.push_back(p);
        step.slots.push_back(table[p / bs] * bs + p % bs);
      }
      rows += s.fresh;
      step.max_context = std::max(step.max_context, ctx);
      tables.push_back(table);
    }
    auto q = Random(size_t(rows) * c.nq * c.head_dim);
    auto k = Random(size_t(rows) * kv_width);
    auto v = Random(size_t(rows) * kv_width);
    auto kcb = F32Buffer(k_cache), vcb = F32Buffer(v_cache);
    auto qb = F32Buffer(q), kb = F32Buffer(k), vb = F32Buffer(v);
    auto out = Empty(q.size());
    ASSERT_TRUE(dev_->BeginStep(step).ok());
    dev_->KvWrite(*kb, *vb, kv_width, *kcb, *vcb);
    AttentionSpec spec{c.nq, c.nkv, c.head_dim,
                       static_cast<float>(1.0 / std::sqrt(double(c.head_dim)))};
    dev_->Attention(*qb, *kcb, *vcb, spec, *out);

    // KvWrite: each new row's K/V sits in its slot; every other slot is untouched.
    for (int r = 0; r < rows; ++r) {
      for (int i = 0; i < kv_width; ++i) {
        k_cache[size_t(step.slots[r]) * kv_width + i] = k[size_t(r) * kv_width + i];
        v_cache[size_t(step.slots[r]) * kv_width + i] = v[size_t(r) * kv_width + i];
      }
    }
    EXPECT_EQ(Read(*kcb), k_cache);
    EXPECT_EQ(Read(*vcb), v_cache);

    std::vector<double> ref(q.size());
    const int group = c.nq / c.nkv;
    for (size_t si = 0; si < seqs.size(); ++si) {
      const auto& ss = step.seqs[si];
      for (int j = 0; j < ss.num_new; ++j) {
        const int r = ss.first_row + j;
        const int p = ss.num_cached + j;
        for (int h = 0; h < c.nq; ++h) {
          const int kvh = h / group;
          std::vector<double> scores(p + 1);
          double mx = -1e300;
          for (int t = 0; t <= p; ++t) {
            const size_t slot = size_t(tables[si][t / bs]) * bs + t % bs;
            double s = 0;
            for (int i = 0; i < c.head_dim; ++i) {
              s += double(q[(size_t(r) * c.nq + h) * c.head_dim + i]) *
                   k_cache[slot * kv_width + kvh * c.head_dim + i];
            }
            scores[t] = s / std::sqrt(double(c.head_dim));
            mx = std::max(mx, scores[t]);
          }
          double sum = 0;
          for (auto& s : scores) sum += (s = std::exp(s - mx));
          for (int i = 0; i < c.head_dim; ++i) {
            double acc = 0;
            for (int t = 0; t <= p; ++t) {
              const size_t slot = size_t(tables[si][t / bs]) * bs + t % bs;
              acc += scores[t] * v_cache[slot * kv_width + kvh * c.head_dim + i];
            }
            ref[(size_t(r) * c.nq + h) * c.head_dim + i] = acc / sum;
          }
        }
      }
    }
    EXPECT_LE(RelErr(Read(*out), ref), kTol)
        << c.nq << "/" << c.nkv << " d" << c.head_dim << " bs" << bs;
  }
}

INSTANTIATE_TEST_SUITE_P(ThreadsAndKernels, CpuOpsTest,
                         ::testing::Combine(::testing::Values(1, 3),
                                            ::testing::Values(CpuKernels::kAuto,
                                                              CpuKernels::kPortable)),
                         [](const auto& info) {
                           return "threads" + std::to_string(std::get<0>(info.param)) +
                                  (std::get<1>(info.param) == CpuKernels::kAuto ? "_auto"
                                                                                : "_portable");
                         });

}  // namespace
}  // namespace sluice::llm

// sluice-kernel-bench: times the CPU device's linear layers at a model's decode shapes, with
// the weights as bf16 and as 4- and 8-bit GPTQ (groups of 128), and reports each product's
// time and the weight bytes it streams per second. Weights are random (GPTQ words are any
// bit pattern), in enough copies to cycle through 512 MB, so that every product reads its
// weights from memory; x is fresh random data. With --attention it times the decode
// attention instead: --rows sequences of --context tokens each, at the demo model's and
// Qwen2-7B's head shapes, and reports the KV bytes read per second. For bench/ figures, not
// for tests.
//
//   sluice-kernel-bench --threads 2 --rows 1 --iters 20
//   sluice-kernel-bench --threads 2 --rows 16 --context 256 --attention

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/device/cpu/half.h"

namespace {

using namespace sluice;
using namespace sluice::llm;

struct Shape {
  const char* name;
  int32_t out, in;
};

// Weights cycled through per product kind: past any CPU's last-level cache.
constexpr size_t kRotateBytes = size_t{512} << 20;

struct Kind {
  const char* name;
  int bits;  // 0: bf16
};

// Median seconds of `iters` runs of `fn` after one warm-up.
template <typename F>
double MedianSeconds(int iters, F fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Decode attention of `rows` sequences of `context` tokens each (one new token a sequence,
// the cache in blocks of 16 slots in a shuffled order), for each head shape.
int BenchAttention(Device& d, int rows, int context, int iters) {
  struct Heads {
    const char* name;
    int32_t q, kv, dim;
  };
  const Heads shapes[] = {{"demo", 4, 2, 64}, {"qwen2-7b", 28, 4, 128}};
  constexpr int32_t kBlock = 16;
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::printf("%-9s %5s %8s %10s %12s %10s\n", "heads", "rows", "context", "KV MB", "ms/call",
              "GB/s");
  for (const Heads& h : shapes) {
    const int32_t blocks_per_seq = (context + kBlock - 1) / kBlock;
    const int32_t num_blocks = rows * blocks_per_seq;
    const size_t kv_width = static_cast<size_t>(h.kv) * h.dim;
    StepMetadata step;
    step.block_size = kBlock;
    step.max_context = context;
    std::vector<int32_t> order(num_blocks);
    for (int32_t i = 0; i < num_blocks; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int32_t r = 0; r < rows; ++r) {
      step.tokens.push_back(0);
      step.positions.push_back(context - 1);
      const int32_t* table = order.data() + r * blocks_per_seq;
      step.slots.push_back(table[(context - 1) / kBlock] * kBlock + (context - 1) % kBlock);
      step.seqs.push_back({r, 1, context - 1, r * blocks_per_seq, blocks_per_seq});
      step.logit_rows.push_back(r);
    }
    step.block_tables = order;
    auto fill = [&](size_t n) -> std::unique_ptr<Buffer> {
      std::vector<float> v(n);
      for (float& x : v) x = normal(rng);
      auto b = d.Allocate(DType::kF32, n);
      if (!b.ok() || !d.Upload(**b, v.data(), n * sizeof(float)).ok()) return nullptr;
      return std::move(*b);
    };
    auto q = fill(static_cast<size_t>(rows) * h.q * h.dim);
    auto k_cache = fill(static_cast<size_t>(num_blocks) * kBlock * kv_width);
    auto v_cache = fill(static_cast<size_t>(num_blocks) * kBlock * kv_width);
    auto out = d.Allocate(DType::kF32, static_cast<size_t>(rows) * h.q * h.dim);
    if (q == nullptr || k_cache == nullptr || v_cache == nullptr || !out.ok() ||
        !d.BeginStep(step).ok()) {
      std::fprintf(stderr, "attention set-up failed\n");
      return 1;
    }
    const AttentionSpec spec{h.q, h.kv, h.dim, 1.f / std::sqrt(static_cast<float>(h.dim))};
    const double sec = MedianSeconds(iters, [&] {
      d.Attention(*q, *k_cache, *v_cache, spec, **out);
      float probe = 0;
      (void)d.Download(**out, &probe, sizeof probe);
    });
    const double kv_bytes = 2.0 * rows * context * kv_width * sizeof(float);
    std::printf("%-9s %5d %8d %10.1f %12.3f %10.2f\n", h.name, rows, context, kv_bytes / 1e6,
                sec * 1e3, kv_bytes / sec / 1e9);
  }
  return 0;
}

// One copy of a product's weights, with the host buffers it points into.
struct WeightCopy {
  std::vector<uint16_t> bf16, scales;
  std::vector<uint32_t> qweight, qzeros;
  std::unique_ptr<Buffer> w;
};

// A copy of random weights of shape `s` and kind `k` loaded on `d` (null on failure); the
// bytes a product streams in *bytes.
std::unique_ptr<WeightCopy> MakeWeightCopy(Device& d, const Shape& s, const Kind& k,
                                           std::mt19937_64& rng,
                                           std::normal_distribution<float>& normal, size_t* bytes) {
  auto c = std::make_unique<WeightCopy>();
  if (k.bits == 0) {
    c->bf16.resize(static_cast<size_t>(s.out) * s.in);
    for (uint16_t& v : c->bf16) v = F32ToBf16(0.02f * normal(rng));
    *bytes = c->bf16.size() * 2;
    auto r = d.LoadWeight(DType::kBF16, c->bf16.data(), c->bf16.size(), nullptr);
    if (!r.ok()) return nullptr;
    c->w = std::move(*r);
    return c;
  }
  const int pack = 32 / k.bits, groups = s.in / 128;
  c->qweight.resize(static_cast<size_t>(s.in / pack) * s.out);
  for (uint32_t& v : c->qweight) v = static_cast<uint32_t>(rng());
  c->qzeros.resize(static_cast<size_t>(groups) * (s.out / pack));
  for (uint32_t& v : c->qzeros) v = static_cast<uint32_t>(rng());
  c->scales.resize(static_cast<size_t>(groups) * s.out);
  for (uint16_t& v : c->scales) v = F32ToF16(0.001f * (1.f + std::abs(normal(rng))));
  *bytes = c->qweight.size() * 4 + c->qzeros.size() * 4 + c->scales.size() * 2;
  GptqWeightSource src;
  src.bits = k.bits;
  src.in = s.in;
  src.out = s.out;
  src.groups = groups;
  src.group_size = 128;
  src.qweight = c->qweight.data();
  src.qzeros = c->qzeros.data();
  src.scales = c->scales.data();
  auto r = d.LoadGptqWeight(src);
  if (!r.ok()) {
    std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
    return nullptr;
  }
  c->w = std::move(*r);
  return c;
}

// Times y = x W for one shape and weight kind, cycling through copies of W, and prints a row.
// False when the weights cannot be made.
bool BenchProduct(Device& d, const Shape& s, const Kind& k, const Buffer& x, Buffer& y, int rows,
                  int iters, std::mt19937_64& rng, std::normal_distribution<float>& normal) {
  size_t bytes = 0;
  // Enough copies to cycle through kRotateBytes, so that no run finds its weights in a
  // cache (a 26 MB product fits some last-level caches).
  std::vector<std::unique_ptr<WeightCopy>> copies;
  copies.push_back(MakeWeightCopy(d, s, k, rng, normal, &bytes));
  if (copies.back() == nullptr) return false;
  const size_t n_copies = std::max<size_t>(1, (kRotateBytes + bytes - 1) / bytes);
  while (copies.size() < n_copies) {
    copies.push_back(MakeWeightCopy(d, s, k, rng, normal, &bytes));
    if (copies.back() == nullptr) return false;
  }
  size_t next = 0;
  const double sec = MedianSeconds(iters, [&] {
    const Buffer& w = *copies[next++ % copies.size()]->w;
    d.Linear(x, w, nullptr, rows, s.in, s.out, y);
    float probe = 0;
    (void)d.Download(y, &probe, sizeof probe);
  });
  std::printf("%-8s %-10s %10.1f %12.3f %10.2f\n", s.name, k.name, bytes / 1e6, sec * 1e3,
              bytes / sec / 1e9);
  return true;
}

// Qwen2-7B's linear products at `rows` rows of x, each with each kind of weights.
int BenchLinear(Device& d, int rows, int iters) {
  const Shape shapes[] = {
      {"q|k|v", 4608, 3584}, {"o", 3584, 3584}, {"gate|up", 37888, 3584}, {"down", 3584, 18944}};
  const Kind kinds[] = {{"bf16", 0}, {"gptq-int8", 8}, {"gptq-int4", 4}};
  std::mt19937_64 rng(1);
  std::printf("%-8s %-10s %10s %12s %10s\n", "product", "weights", "MB", "ms/product", "GB/s");
  for (const Shape& s : shapes) {
    std::vector<float> x(static_cast<size_t>(rows) * s.in);
    std::normal_distribution<float> normal(0.f, 1.f);
    for (float& v : x) v = normal(rng);
    auto xb = d.Allocate(DType::kF32, x.size());
    auto yb = d.Allocate(DType::kF32, static_cast<size_t>(rows) * s.out);
    if (!xb.ok() || !yb.ok() || !d.Upload(**xb, x.data(), x.size() * sizeof(float)).ok()) {
      std::fprintf(stderr, "allocation failed\n");
      return 1;
    }
    for (const Kind& k : kinds) {
      if (!BenchProduct(d, s, k, **xb, **yb, rows, iters, rng, normal)) return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times the CPU device's linear layers (bf16 and GPTQ weights) at decode shapes."};
  int threads = 0, rows = 1, iters = 20;
  app.add_option("--threads", threads, "CPU threads (0: the hardware's)");
  app.add_option("--rows", rows, "rows of x (the decode batch)")->check(CLI::Range(1, 256));
  app.add_option("--iters", iters, "timed runs per product (the median is reported)")
      ->check(CLI::Range(1, 10000));
  int context = 256;
  bool attention = false;
  app.add_option("--context", context, "tokens a sequence (--attention)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_flag("--attention", attention, "time the decode attention instead of linear layers");
  CLI11_PARSE(app, argc, argv);

  auto device_or = CreateCpuDevice({.threads = threads});
  if (!device_or.ok()) {
    std::fprintf(stderr, "%s\n", device_or.status().ToString().c_str());
    return 1;
  }
  Device& d = **device_or;
  if (attention) return BenchAttention(d, rows, context, iters);
  return BenchLinear(d, rows, iters);
}

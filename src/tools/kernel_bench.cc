// sluice-kernel-bench: times the CPU device's linear layers at a model's decode shapes, with
// the weights as bf16 and as 4- and 8-bit GPTQ (groups of 128), and reports each product's
// time and the weight bytes it streams per second. Weights are random (GPTQ words are any
// bit pattern), far larger than the caches, and every product reads them once; x is fresh
// random data. For bench/ figures, not for tests.
//
//   sluice-kernel-bench --threads 2 --rows 1 --iters 20

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times the CPU device's linear layers (bf16 and GPTQ weights) at decode shapes."};
  int threads = 0, rows = 1, iters = 20;
  app.add_option("--threads", threads, "CPU threads (0: the hardware's)");
  app.add_option("--rows", rows, "rows of x (the decode batch)")->check(CLI::Range(1, 256));
  app.add_option("--iters", iters, "timed runs per product (the median is reported)")
      ->check(CLI::Range(1, 10000));
  CLI11_PARSE(app, argc, argv);

  auto device_or = CreateCpuDevice({.threads = threads});
  if (!device_or.ok()) {
    std::fprintf(stderr, "%s\n", device_or.status().ToString().c_str());
    return 1;
  }
  Device& d = **device_or;
  // Qwen2-7B's products.
  const Shape shapes[] = {{"q|k|v", 4608, 3584}, {"o", 3584, 3584},
                          {"gate|up", 37888, 3584}, {"down", 3584, 18944}};
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
      std::vector<uint16_t> bf16;
      std::vector<uint32_t> qweight, qzeros;
      std::vector<uint16_t> scales;
      std::unique_ptr<Buffer> w;
      size_t bytes = 0;
      if (k.bits == 0) {
        bf16.resize(static_cast<size_t>(s.out) * s.in);
        for (uint16_t& v : bf16) v = F32ToBf16(0.02f * normal(rng));
        bytes = bf16.size() * 2;
        auto r = d.LoadWeight(DType::kBF16, bf16.data(), bf16.size(), nullptr);
        if (!r.ok()) return 1;
        w = std::move(*r);
      } else {
        const int pack = 32 / k.bits, groups = s.in / 128;
        qweight.resize(static_cast<size_t>(s.in / pack) * s.out);
        for (uint32_t& v : qweight) v = static_cast<uint32_t>(rng());
        qzeros.resize(static_cast<size_t>(groups) * (s.out / pack));
        for (uint32_t& v : qzeros) v = static_cast<uint32_t>(rng());
        scales.resize(static_cast<size_t>(groups) * s.out);
        for (uint16_t& v : scales) v = F32ToF16(0.001f * (1.f + std::abs(normal(rng))));
        bytes = qweight.size() * 4 + qzeros.size() * 4 + scales.size() * 2;
        GptqWeightSource src;
        src.bits = k.bits;
        src.in = s.in;
        src.out = s.out;
        src.groups = groups;
        src.group_size = 128;
        src.qweight = qweight.data();
        src.qzeros = qzeros.data();
        src.scales = scales.data();
        auto r = d.LoadGptqWeight(src);
        if (!r.ok()) {
          std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
          return 1;
        }
        w = std::move(*r);
      }
      const double sec = MedianSeconds(iters, [&] {
        d.Linear(**xb, *w, nullptr, rows, s.in, s.out, **yb);
        float probe = 0;
        (void)d.Download(**yb, &probe, sizeof probe);
      });
      std::printf("%-8s %-10s %10.1f %12.3f %10.2f\n", s.name, k.name, bytes / 1e6, sec * 1e3,
                  bytes / sec / 1e9);
    }
  }
  return 0;
}

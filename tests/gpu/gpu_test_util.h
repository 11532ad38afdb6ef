#pragma once
// Helpers for the CUDA kernel tests: skip without a GPU, device arrays, bf16 on the host,
// and fresh random inputs whose seed is printed so that a failure can be replayed
// (SLUICE_TEST_SEED=<seed> fixes it).

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace sluice::llm::cuda::testing {

inline bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define SLUICE_REQUIRE_GPU()                                \
  do {                                                      \
    if (!::sluice::llm::cuda::testing::HaveGpu()) {         \
      GTEST_SKIP() << "no usable CUDA GPU on this machine"; \
    }                                                       \
  } while (0)

#define SLUICE_CUDA_OK(expr) ASSERT_EQ((expr), cudaSuccess) << cudaGetErrorString(expr)

// A CUDA graph of what `body` launches on `stream` (thread-local capture), instantiated, and
// destroyed with the object. Capture asserts: call it in ASSERT_NO_FATAL_FAILURE.
class CapturedGraph {
 public:
  CapturedGraph() = default;
  ~CapturedGraph() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;

  template <typename Body>
  void Capture(cudaStream_t stream, Body body) {
    SLUICE_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    body();
    SLUICE_CUDA_OK(cudaStreamEndCapture(stream, &graph_));
    SLUICE_CUDA_OK(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

// A device array of T, freed on destruction.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    if (cudaMalloc(&ptr_, std::max<size_t>(n, 1) * sizeof(T)) != cudaSuccess) ptr_ = nullptr;
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { Upload(host); }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  // Landed when it returns: from pageable memory cudaMemcpy returns once the bytes are staged,
  // and its legacy stream does not order with the tests' non-blocking streams.
  void Upload(const std::vector<T>& host) {
    cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
    cudaDeviceSynchronize();
  }
  std::vector<T> Download() const {
    cudaDeviceSynchronize();
    std::vector<T> host(n_);
    cudaMemcpy(host.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost);
    return host;
  }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

inline float Bf16ToFloat(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
inline __nv_bfloat16 FloatToBf16(float v) {
  return __float2bfloat16(v);
}
// Rounds through bf16, as a bf16 tensor stores a value.
inline float RoundBf16(float v) {
  return Bf16ToFloat(FloatToBf16(v));
}

inline std::vector<__nv_bfloat16> ToBf16(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FloatToBf16(v[i]);
  return out;
}
inline std::vector<float> ToFloat(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16ToFloat(v[i]);
  return out;
}

// A generator seeded freshly for each test (or from SLUICE_TEST_SEED); the seed is printed.
inline std::mt19937_64 FreshRng() {
  uint64_t seed = 0;
  if (const char* s = std::getenv("SLUICE_TEST_SEED")) {
    seed = std::strtoull(s, nullptr, 10);
  } else {
    seed = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  }
  std::printf("[ seed     ] SLUICE_TEST_SEED=%llu\n", static_cast<unsigned long long>(seed));
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return std::mt19937_64(seed);
}

// n values uniform in [lo, hi), already rounded to bf16 (so host and device see the same).
inline std::vector<float> RandomBf16Values(std::mt19937_64& rng, size_t n, float lo = -1.f,
                                           float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = RoundBf16(d(rng));
  return v;
}

// Largest |a - b| / (|b| + atol) over two arrays, for reporting.
inline double MaxRelError(const std::vector<float>& a, const std::vector<float>& b,
                          double atol = 1e-3) {
  double worst = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    worst = std::max(worst, std::abs(double{a[i]} - b[i]) / (std::abs(double{b[i]}) + atol));
  }
  return worst;
}

}  // namespace sluice::llm::cuda::testing

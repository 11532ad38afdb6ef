#pragma once
// What the GPTQ tests on the CUDA device share (gptq_test.cc, gptq_gemm_test.cc,
// gptq_gemm90_swiglu_test.cc): the device, bf16 buffers to and from it, and the error of a
// product (and of a SwiGLU) against the float64 products of the dequantized weights
// (support/gptq_fixture.h's Quantized::dequant).

#include <cuda_bf16.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/llm/device/cuda/cuda_device.h"
#include "gpu/gpu_test_util.h"
#include "support/gptq_fixture.h"

namespace sluice::llm::testing {

inline std::unique_ptr<Device> Gpu() {
  auto device = CreateCudaDevice({});
  EXPECT_TRUE(device.ok()) << device.status().ToString();
  return device.ok() ? std::move(*device) : nullptr;
}

inline std::unique_ptr<Buffer> UploadBf16(Device& d, const std::vector<float>& v) {
  auto b = d.Allocate(DType::kBF16, v.size());
  EXPECT_TRUE(b.ok());
  const auto h = cuda::testing::ToBf16(v);
  EXPECT_TRUE(d.Upload(**b, h.data(), h.size() * 2).ok());
  return std::move(*b);
}

inline std::vector<float> DownloadBf16(Device& d, const Buffer& b) {
  std::vector<__nv_bfloat16> h(b.elements());
  Status st = d.Download(b, h.data(), h.size() * 2);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return cuda::testing::ToFloat(h);
}

// ||got - ref|| / ||ref|| of y [rows, out] against x W^T (+ bias) in float64; every
// element must be finite (written).
inline double ProductError(const std::vector<float>& got, const std::vector<float>& x,
                           const Quantized& q, const std::vector<float>* bias, int32_t rows) {
  double diff = 0, norm = 1e-300;
  for (int32_t m = 0; m < rows; ++m) {
    for (int32_t j = 0; j < q.out; ++j) {
      double ref = bias ? (*bias)[j] : 0.0;
      for (int32_t i = 0; i < q.in; ++i) {
        ref += double{x[static_cast<size_t>(m) * q.in + i]} *
               q.dequant[static_cast<size_t>(j) * q.in + i];
      }
      const double v = got[static_cast<size_t>(m) * q.out + j];
      if (!std::isfinite(v)) return INFINITY;
      diff += (v - ref) * (v - ref);
      norm += ref * ref;
    }
  }
  return std::sqrt(diff / norm);
}

// ||act - ref|| / ||ref|| of act [rows, g.out] against silu(x W_gate^T + b_g) * (x W_up^T + b_u)
// in float64 (biases optional); every element must be finite (written).
inline double SwiGluError(const std::vector<float>& got, const std::vector<float>& x,
                          const Quantized& g, const Quantized& u, const std::vector<float>* bg,
                          const std::vector<float>* bu, int32_t rows) {
  double diff = 0, norm = 1e-300;
  for (int32_t m = 0; m < rows; ++m) {
    for (int32_t j = 0; j < g.out; ++j) {
      double a = bg ? (*bg)[j] : 0.0, b = bu ? (*bu)[j] : 0.0;
      for (int32_t i = 0; i < g.in; ++i) {
        const double xv = x[static_cast<size_t>(m) * g.in + i];
        a += xv * g.dequant[static_cast<size_t>(j) * g.in + i];
        b += xv * u.dequant[static_cast<size_t>(j) * g.in + i];
      }
      const double ref = a / (1.0 + std::exp(-a)) * b;
      const double v = got[static_cast<size_t>(m) * g.out + j];
      if (!std::isfinite(v)) return INFINITY;
      diff += (v - ref) * (v - ref);
      norm += ref * ref;
    }
  }
  return std::sqrt(diff / norm);
}

}  // namespace sluice::llm::testing

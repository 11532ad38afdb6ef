// Small-batch linear layers (decode steps of 1 to 4 sequences): y = x W^T (+ bias).
//
// At M <= 4 a linear layer is a matrix-vector product: every weight byte is used M times,
// so the layer is bound by reading W once, and the whole decode step by reading the model.
// Here each warp owns one output column n and streams W's row n (contiguous in the Hugging
// Face [out, in] layout) with 16-byte loads, four in flight per lane; the M activation rows
// are small and come from L1/L2. Accumulation is fp32 in a fixed order (per lane, then a
// warp butterfly), the bias is added in fp32 and the result rounded once.

#include <cuda_bf16.h>

#include <cstdint>

#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda {
namespace {

constexpr int kWarps = 8;   // output columns per block
constexpr int kUnroll = 4;  // 16-byte weight loads in flight per lane

__device__ __forceinline__ void Unpack(const uint4& v, float (&f)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 p = __bfloat1622float2(h[i]);
    f[2 * i] = p.x;
    f[2 * i + 1] = p.y;
  }
}

__device__ __forceinline__ void Store(float* y, float v) { *y = v; }
__device__ __forceinline__ void Store(bf16* y, float v) { *y = __float2bfloat16_rn(v); }

template <int M, typename Out>
__global__ void __launch_bounds__(kWarps * 32)
    GemvKernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
               const bf16* __restrict__ bias, int32_t in, int32_t out, Out* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int n = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (n >= out) return;
  const int chunks = in / 8;
  const uint4* wr = reinterpret_cast<const uint4*>(w + static_cast<int64_t>(n) * in);
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.f;

  for (int c0 = lane; c0 < chunks; c0 += 32 * kUnroll) {
    uint4 wv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      // Weights are read once per step: keep them out of L1 (streaming load).
      wv[u] = c < chunks ? __ldcs(wr + c) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * 32;
      if (c >= chunks) break;
      float wf[8];
      Unpack(wv[u], wf);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        float xf[8];
        Unpack(__ldg(reinterpret_cast<const uint4*>(x + static_cast<int64_t>(m) * in) + c), xf);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[m] = fmaf(wf[e], xf[e], acc[m]);
      }
    }
  }
#pragma unroll
  for (int m = 0; m < M; ++m) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[m] += __shfl_xor_sync(0xffffffffu, acc[m], off);
  }
  if (lane == 0) {
    const float b = bias != nullptr ? __bfloat162float(bias[n]) : 0.f;
#pragma unroll
    for (int m = 0; m < M; ++m) Store(y + static_cast<int64_t>(m) * out + n, acc[m] + b);
  }
}

template <typename Out>
void Launch(const bf16* x, const bf16* w, const bf16* bias, int32_t rows, int32_t in, int32_t out,
            Out* y, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((out + kWarps - 1) / kWarps));
  const dim3 block(kWarps * 32);
  switch (rows) {
    case 1:
      GemvKernel<1, Out><<<grid, block, 0, stream>>>(x, w, bias, in, out, y);
      break;
    case 2:
      GemvKernel<2, Out><<<grid, block, 0, stream>>>(x, w, bias, in, out, y);
      break;
    case 3:
      GemvKernel<3, Out><<<grid, block, 0, stream>>>(x, w, bias, in, out, y);
      break;
    default:
      GemvKernel<4, Out><<<grid, block, 0, stream>>>(x, w, bias, in, out, y);
      break;
  }
}

}  // namespace

bool SmallBatchLinearFits(int32_t rows, int32_t in) {
  return rows >= 1 && rows <= kSmallBatchLinearMaxRows && in % 8 == 0;
}

void SmallBatchLinear(const bf16* x, const bf16* w, const bf16* bias, int32_t rows, int32_t in,
                      int32_t out, void* y, bool y_f32, cudaStream_t stream) {
  if (rows < 1 || out < 1) return;
  if (y_f32) {
    Launch(x, w, bias, rows, in, out, static_cast<float*>(y), stream);
  } else {
    Launch(x, w, bias, rows, in, out, static_cast<bf16*>(y), stream);
  }
}

}  // namespace sluice::llm::cuda

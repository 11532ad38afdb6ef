// Which kernel runs a product on the CUDA device (cuda_device_impl.h): Sluice's GEMV for
// small decode batches (alone, fused over a weight group, or with its slices left for the
// next norm to add), cuBLASLt for the rest, and GPTQ weights through their small-batch
// kernels or dequantized into a scratch for cuBLASLt.

#include <cublasLt.h>
#include <cuda_runtime.h>

#include "backends/llm/device/cuda/cuda_device_impl.h"

namespace sluice::llm {

using cuda::Bf16;
using cuda::BlasError;
using cuda::CudaError;
using cuda::GptqCudaWeight;
using cuda::Ptr;

// y = x W^T: in cuBLASLt's column-major terms, y^T [out, rows] = W [in, out]^T x^T [in, rows].
void CudaDevice::Linear(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows,
                        int32_t in, int32_t out, Buffer& y) {
  if (const auto* q = dynamic_cast<const GptqCudaWeight*>(&weight)) {
    return GptqLinear(x, *q, bias, rows, in, out, y);
  }
  const bool f32_out = y.dtype() == DType::kF32;
  if (tuning_.small_batch_gemv && cuda::SmallBatchLinearFits(rows, in)) {
    const size_t need = cuda::SmallBatchLinearWorkspaceBytes(in, out);
    if (need > gemv_ws_.bytes) {
      if (capturing_) return Fail(Internal("GEMV workspace grew during graph capture"));
      Result<bool> moved = gemv_ws_.Ensure(need);
      if (!moved.ok()) return Fail(moved.status());
      // The split GEMV's counters start at zero, and every launch leaves them so.
      if (cudaError_t e = cudaMemsetAsync(gemv_ws_.ptr, 0, gemv_ws_.bytes, stream());
          e != cudaSuccess) {
        return Fail(CudaError(e, "cudaMemsetAsync of the GEMV workspace"));
      }
      if (*moved) DropGraphs();
    }
    cuda::SmallBatchLinear(Bf16(x), Bf16(weight), bias ? Bf16(*bias) : nullptr, rows, in, out,
                           Ptr<void>(y), f32_out, gemv_ws_.ptr, gemv_ws_.bytes, stream());
    return Prof("Linear (GEMV)", out, in);
  }
  Matmul(Ptr<void>(x), Ptr<void>(weight), bias, rows, in, out, y);
}

// y = x W^T through cuBLASLt, W bf16 [out, in] at `weight`.
void CudaDevice::Matmul(const void* x, const void* weight, const Buffer* bias, int32_t rows,
                        int32_t in, int32_t out, Buffer& y) {
  const bool f32_out = y.dtype() == DType::kF32;
  Result<cuda::MatmulPlan*> plan = plans_.Get(blas_.get(), blas_workspace_.bytes, !capturing_, rows,
                                              in, out, f32_out, bias != nullptr);
  if (!plan.ok()) return Fail(plan.status());
  cuda::MatmulPlan& p = **plan;
  if (bias != nullptr) {
    const void* bias_ptr = Ptr<void>(*bias);
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr,
                                   sizeof(bias_ptr));
  }
  const float alpha = 1.f, beta = 0.f;
  cublasStatus_t s = cublasLtMatmul(
      blas_.get(), p.desc, &alpha, weight, p.a, x, p.b, &beta, Ptr<void>(y), p.c, Ptr<void>(y), p.c,
      p.has_algo ? &p.algo : nullptr, blas_workspace_.ptr, blas_workspace_.bytes, stream());
  if (s != CUBLAS_STATUS_SUCCESS) return Fail(BlasError(s, "cublasLtMatmul"));
  Prof("Linear (cuBLASLt)", out, in);
}

// A GPTQ product: decode batches (bf16 y) through the tensor-core or small-batch kernel, or
// up to GptqGemmMaxRows() rows the tensor-core layout's GEMM, which read the packed weights (x
// permuted first for act-order); larger ones dequantize the weight into a scratch and run
// the cuBLASLt GEMM (exllama's approach for prefill), the dequantization one product ahead on
// a side stream outside graph captures (gptq_dequant_ahead.h).
void CudaDevice::GptqLinear(const Buffer& x, const GptqCudaWeight& w, const Buffer* bias,
                            int32_t rows, int32_t in, int32_t out, Buffer& y) {
  if (w.layout().in != in || w.out() != out) {
    return Fail(Internal("GPTQ weight used with another shape"));
  }
  if (GptqSmallBatch(w, rows, y) || GptqGemm(w, rows, y)) {
    const LinearPart part{&w, bias, out, &y};
    return GptqGroup(x, {&part, 1}, rows);
  }
  // Act-order: the weight dequantized in its sorted row order (coalesced stores; the
  // checkpoint's order scatters them) against x permuted the same way, x_s W_s^T = x W^T.
  cuda::GptqLayout sorted = w.layout();
  const void* input = Ptr<void>(x);
  if (sorted.perm != nullptr) {
    const size_t need = static_cast<size_t>(rows) * in * sizeof(cuda::bf16);
    if (need > gptq_x_prefill_.bytes && capturing_) {
      return Fail(Internal("GPTQ act-order scratch grew during graph capture"));
    }
    Result<bool> grown = gptq_x_prefill_.Ensure(need);  // no graph reads it
    if (!grown.ok()) return Fail(grown.status());
    cuda::GptqPermuteRows(Bf16(x), sorted.perm, rows, in,
                          static_cast<cuda::bf16*>(gptq_x_prefill_.ptr), stream());
    input = gptq_x_prefill_.ptr;
    sorted.perm = nullptr;
  }
  if (tuning_.gptq_dequant_ahead && !capturing_) {
    // Every product of the step has these rows: the next one dequantizes if this one does.
    const auto dequantizes = [&](const GptqCudaWeight& next) {
      return !GptqSmallBatch(next, rows, y) && !GptqGemm(next, rows, y);
    };
    Result<const cuda::bf16*> weight = gptq_ahead_.Acquire(w, stream(), dequantizes);
    if (!weight.ok()) return Fail(weight.status());
    Matmul(input, *weight, bias, rows, in, out, y);
    if (Status st = gptq_ahead_.Release(stream()); !st.ok()) Fail(std::move(st));
    return;
  }
  cuda::GptqDequantize(sorted, w.qweight(), w.scale_zero(), out,
                       static_cast<cuda::bf16*>(gptq_dequant_.ptr), stream());
  Prof("GPTQ dequantize", out, in);
  Matmul(input, gptq_dequant_.ptr, bias, rows, in, out, y);
}

bool CudaDevice::GptqSmallBatch(const GptqCudaWeight& w, int32_t rows, const Buffer& y) const {
  return tuning_.small_batch_gemv && rows >= 1 && rows <= cuda::GptqSmallBatchRows(w.layout()) &&
         y.dtype() == DType::kBF16;
}

// The tensor-core layout's GEMM (gptq_gemm.cu) for the rows past its small-batch kernel's, up
// to SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS (0: never).
bool CudaDevice::GptqGemm(const GptqCudaWeight& w, int32_t rows, const Buffer& y) const {
  return w.layout().mma != 0 && rows > cuda::GptqMmaMaxRows() && rows <= cuda::GptqGemmMaxRows() &&
         y.dtype() == DType::kBF16;
}

// The GPTQ parts' device view (one row order, GptqCudaWeight::order).
cuda::GptqParts CudaDevice::GptqPartsOf(std::span<const LinearPart> parts) {
  cuda::GptqParts g;
  g.count = static_cast<int32_t>(parts.size());
  int32_t end = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const auto& w = static_cast<const GptqCudaWeight&>(*parts[i].weight);
    end += parts[i].out;
    g.end[i] = end;
    g.qweight[i] = w.qweight();
    g.scale_zero[i] = w.scale_zero();
    g.bias[i] = parts[i].bias ? Bf16(*parts[i].bias) : nullptr;
    g.y[i] = Bf16(*parts[i].y);
  }
  return g;
}

// x in the weights' sorted row order: x itself, or x permuted into gptq_x_ (act-order).
const cuda::bf16* CudaDevice::GptqInput(const Buffer& x, const cuda::GptqLayout& layout,
                                        int32_t rows) {
  if (layout.perm == nullptr) return Bf16(x);
  cuda::GptqPermuteRows(Bf16(x), layout.perm, rows, layout.in,
                        static_cast<cuda::bf16*>(gptq_x_.ptr), stream());
  return static_cast<cuda::bf16*>(gptq_x_.ptr);
}

// Parts of GPTQ weights of one row order in one small-batch launch, or one GEMM past the
// small-batch rows.
void CudaDevice::GptqGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows) {
  const cuda::GptqLayout& layout = static_cast<const GptqCudaWeight&>(*parts[0].weight).layout();
  const cuda::GptqParts g = GptqPartsOf(parts);
  const cuda::bf16* input = GptqInput(x, layout, rows);
  const int32_t end = g.end[g.count - 1];
  if (rows > cuda::GptqSmallBatchRows(layout)) {
    cuda::GptqGemmLinear(input, layout, g, rows, static_cast<float*>(gptq_gemm_ws_.ptr),
                         gptq_gemm_ws_.bytes, stream());
    return Prof("Linear (GPTQ GEMM)", end, layout.in);
  }
  cuda::GptqSmallBatchLinear(input, layout, g, rows, stream());
  Prof(layout.mma ? "Linear (GPTQ mma)" : "Linear (GPTQ GEMV)", end, layout.in);
}

// In decode steps the product's slices (gemv.cu SplitsFor) are added by the norm that
// consumes it instead of by the product's own last blocks (a threadfence, an atomic and a
// read of the partials on the step's critical path), which lets o be cut in 2 and gains a
// decode step (bench/RESULTS.md, "Decode at 81.6 % of bandwidth"); down, cut in 4 either
// way, goes the same path because it measured level and is bit-equal.
void CudaDevice::LinearAddRmsNorm(const Buffer& x, const Buffer& weight, const Buffer* bias,
                                  int32_t rows, int32_t in, int32_t out, Buffer& y,
                                  Buffer& residual, const Buffer& norm_weight, float eps,
                                  Buffer& norm_out) {
  if (const auto* q = dynamic_cast<const GptqCudaWeight*>(&weight)) {
    return GptqLinearAddRmsNorm(x, *q, bias, rows, in, out, y, residual, norm_weight, eps,
                                norm_out);
  }
  const int splits = tuning_.partials_norm && tuning_.small_batch_gemv
                         ? cuda::SmallBatchLinearPartialSplits(rows, in, out)
                         : 0;
  if (splits < 1 || splits > tuning_.partials_max_splits ||
      !cuda::AddRmsNormPartialsFits(out, splits)) {
    return Device::LinearAddRmsNorm(x, weight, bias, rows, in, out, y, residual, norm_weight, eps,
                                    norm_out);
  }
  float* partials = Partials(cuda::SmallBatchLinearPartialsBytes(rows, in, out));
  if (partials == nullptr) return;
  cuda::SmallBatchLinearPartials(Bf16(x), Bf16(weight), rows, in, out, partials, stream());
  Prof("Linear (GEMV partials)", out, in);
  cuda::AddRmsNormPartials(Bf16(residual), partials, splits, bias ? Bf16(*bias) : nullptr,
                           Bf16(norm_weight), rows, out, eps, Bf16(norm_out), stream());
  Prof("AddRmsNorm (partials)");
}

// SLUICE_CUDA_GPTQ_PARTIALS=1: a GPTQ output projection cut along its inputs into slices
// whose fp32 sums the norm adds (as the bf16 GEMV's partials above): o and down have few
// 16-column tiles (224 for Qwen2-7B), too few blocks to keep an H200 reading at batch 1.
void CudaDevice::GptqLinearAddRmsNorm(const Buffer& x, const GptqCudaWeight& w, const Buffer* bias,
                                      int32_t rows, int32_t in, int32_t out, Buffer& y,
                                      Buffer& residual, const Buffer& norm_weight, float eps,
                                      Buffer& norm_out) {
  const cuda::GptqLayout& layout = w.layout();
  const int splits = tuning_.gptq_partials && GptqSmallBatch(w, rows, y) && layout.in == in
                         ? cuda::GptqPartialSplits(layout, out, rows)
                         : 0;
  if (splits < 2 || !cuda::AddRmsNormPartialsFits(out, splits)) {
    return Device::LinearAddRmsNorm(x, w, bias, rows, in, out, y, residual, norm_weight, eps,
                                    norm_out);
  }
  float* partials = Partials(static_cast<size_t>(splits) * rows * out * sizeof(float));
  if (partials == nullptr) return;
  cuda::GptqSmallBatchLinearPartials(GptqInput(x, layout, rows), layout, w.qweight(),
                                     w.scale_zero(), out, rows, splits, partials, stream());
  Prof("Linear (GPTQ mma partials)", out, in);
  cuda::AddRmsNormPartials(Bf16(residual), partials, splits, bias ? Bf16(*bias) : nullptr,
                           Bf16(norm_weight), rows, out, eps, Bf16(norm_out), stream());
  Prof("AddRmsNorm (partials)");
}

// A decode step's q|k|v or gate|up as one GEMV launch when the weights sit back to back
// (LoadWeightGroup) and the outputs are bf16; otherwise one Linear each.
void CudaDevice::LinearGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows,
                             int32_t in) {
  if (!parts.empty() && dynamic_cast<const GptqCudaWeight*>(parts[0].weight) != nullptr) {
    // GPTQ parts of one row order run as one small-batch product or GEMM.
    const auto* first = static_cast<const GptqCudaWeight*>(parts[0].weight);
    bool fused = tuning_.fuse && parts.size() <= cuda::kGptqMaxParts;
    for (size_t i = 0; fused && i < parts.size(); ++i) {
      const auto* w = dynamic_cast<const GptqCudaWeight*>(parts[i].weight);
      fused = w != nullptr && w->order() == first->order() && w->out() == parts[i].out &&
              w->layout().in == in && w->layout().mma == first->layout().mma &&
              (GptqSmallBatch(*w, rows, *parts[i].y) || GptqGemm(*w, rows, *parts[i].y));
    }
    if (!fused) return Device::LinearGroup(x, parts, rows, in);
    return GptqGroup(x, parts, rows);
  }
  bool fused = tuning_.fuse && tuning_.small_batch_gemv && cuda::SmallBatchLinearFits(rows, in) &&
               parts.size() >= 1 && parts.size() <= cuda::kGemvMaxParts;
  for (size_t i = 0; fused && i < parts.size(); ++i) {
    fused = parts[i].y->dtype() == DType::kBF16 &&
            (i == 0 || Bf16(*parts[i].weight) ==
                           Bf16(*parts[i - 1].weight) + static_cast<size_t>(parts[i - 1].out) * in);
  }
  if (!fused) return Device::LinearGroup(x, parts, rows, in);
  cuda::GemvParts g;
  g.count = static_cast<int32_t>(parts.size());
  int32_t end = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    end += parts[i].out;
    g.end[i] = end;
    g.bias[i] = parts[i].bias ? Bf16(*parts[i].bias) : nullptr;
    g.y[i] = Bf16(*parts[i].y);
  }
  cuda::SmallBatchLinearGroup(Bf16(x), Bf16(*parts[0].weight), g, rows, in, stream());
  Prof("LinearGroup (GEMV)", end, in);
}

// Decode steps of <= 4 rows read gate's and up's rows in one launch that writes the
// activation directly (gate|up back to back, as LoadWeightGroup places them); GPTQ gate and up
// of the tensor-core layout do the same up to its small-batch rows (GptqSwiGlu).
void CudaDevice::SwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up, int32_t rows,
                        int32_t in, Buffer& act) {
  if (dynamic_cast<const GptqCudaWeight*>(gate.weight) != nullptr ||
      dynamic_cast<const GptqCudaWeight*>(up.weight) != nullptr) {
    return GptqSwiGlu(x, gate, up, rows, in, act);
  }
  if (!tuning_.fuse || !tuning_.small_batch_gemv || !cuda::SmallBatchLinearFits(rows, in) ||
      gate.out != up.out || act.dtype() != DType::kBF16 ||
      Bf16(*up.weight) != Bf16(*gate.weight) + static_cast<size_t>(gate.out) * in) {
    return Device::SwiGlu(x, gate, up, rows, in, act);
  }
  cuda::SmallBatchSwiGlu(Bf16(x), Bf16(*gate.weight), gate.bias ? Bf16(*gate.bias) : nullptr,
                         up.bias ? Bf16(*up.bias) : nullptr, rows, in, gate.out, Bf16(act),
                         stream());
  Prof("SwiGlu (GEMV)", 2 * gate.out, in);
}

void CudaDevice::GptqSwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up,
                            int32_t rows, int32_t in, Buffer& act) {
  const auto* g = dynamic_cast<const GptqCudaWeight*>(gate.weight);
  const auto* u = dynamic_cast<const GptqCudaWeight*>(up.weight);
  const bool pair = tuning_.fuse && tuning_.gptq_swiglu && g != nullptr && u != nullptr &&
                    g->order() == u->order() && g->layout().mma &&
                    u->layout().mma == g->layout().mma && g->layout().in == in &&
                    gate.out == up.out && g->out() == gate.out && u->out() == up.out;
  const LinearPart parts[] = {{gate.weight, gate.bias, gate.out, &act},
                              {up.weight, up.bias, up.out, &act}};
  if (pair && GptqSmallBatch(*g, rows, act)) {
    cuda::GptqSmallBatchSwiGlu(GptqInput(x, g->layout(), rows), g->layout(), GptqPartsOf(parts),
                               rows, stream());
    return Prof("SwiGlu (GPTQ mma)", 2 * gate.out, in);
  }
  // The Hopper GEMM's rows: one launch where its plan allows (GptqGemm90SwiGlu), x permuted
  // first for act-order (as the product would).
  if (pair && GptqGemm(*g, rows, act) && cuda::GptqGemm90Runs(rows) &&
      cuda::GptqGemm90SwiGlu(GptqInput(x, g->layout(), rows), g->layout(), GptqPartsOf(parts), rows,
                             static_cast<float*>(gptq_gemm_ws_.ptr), gptq_gemm_ws_.bytes,
                             stream())) {
    return Prof("SwiGlu (GPTQ GEMM)", 2 * gate.out, in);
  }
  Device::SwiGlu(x, gate, up, rows, in, act);  // gate|up as one product, then SiluMul
}

// The partial sums' scratch, grown to `bytes` (null, the step failed, if it cannot be).
float* CudaDevice::Partials(size_t bytes) {
  if (bytes > partials_ws_.bytes) {
    if (capturing_) {
      Fail(Internal("GEMV partials grew during graph capture"));
      return nullptr;
    }
    Result<bool> moved = partials_ws_.Ensure(bytes);
    if (!moved.ok()) {
      Fail(moved.status());
      return nullptr;
    }
    if (*moved) DropGraphs();
  }
  return static_cast<float*>(partials_ws_.ptr);
}

}  // namespace sluice::llm

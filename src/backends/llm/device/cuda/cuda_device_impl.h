#pragma once
// The CUDA device's class (cuda_device.h has its contract), shared by the files that
// implement it, each one concept: cuda_device.cc (lifecycle, memory, the step and its
// graphs), cuda_device_ops.cc (norms, rope, KV writes, attention), cuda_device_linear.cc
// (which kernel runs a product: GEMV, cuBLASLt, GPTQ), cuda_device_sampling.cc. What it
// delegates has rooms of its own: the tuning knobs (cuda_tuning.h), the step's metadata
// (cuda_step_layout.h), the decode graphs (cuda_graph_cache.h), weight uploads
// (cuda_weight_upload.h), cuBLASLt plans (cublaslt_plans.h). Used from the engine thread only.

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "backends/llm/device/cuda/cublaslt_plans.h"
#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/device/cuda/cuda_graph_cache.h"
#include "backends/llm/device/cuda/cuda_handles.h"
#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/cuda_step_layout.h"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/cuda_weight_upload.h"
#include "backends/llm/device/cuda/gptq_dequant_ahead.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/step_profiler.h"

namespace sluice::llm {

class CudaDevice final : public Device {
 public:
  CudaDevice(const CudaDeviceOptions& options, const cuda::CudaTuning& tuning)
      : options_(options), tuning_(tuning) {}
  ~CudaDevice() override;
  Status Init();

  std::string_view name() const override { return name_; }
  DType activation_dtype() const override { return DType::kBF16; }
  cudaStream_t stream() const { return stream_.get(); }
  size_t num_graphs() const { return graphs_.size(); }

  // Memory (cuda_device.cc).
  Result<std::unique_ptr<Buffer>> Allocate(DType dtype, size_t elements) override;
  Result<std::unique_ptr<Buffer>> LoadWeight(DType dtype, const void* host, size_t elements,
                                             std::shared_ptr<const void> keep_alive) override;
  Result<std::vector<std::unique_ptr<Buffer>>> LoadWeightGroup(
      std::span<const WeightSource> parts) override;
  Result<std::unique_ptr<Buffer>> LoadGptqWeight(const GptqWeightSource& source) override;
  Status Upload(Buffer& dst, const void* host, size_t bytes) override;
  Status Download(const Buffer& src, void* host, size_t bytes) override;
  std::optional<DeviceMemory> memory() const override;

  // The step and its graphs (cuda_device.cc).
  Status BeginStep(const StepMetadata& step) override;
  int32_t GraphBucket(int32_t num_seqs) const override;
  std::vector<int32_t> WarmUpRows(int32_t max_rows) const override {
    return cuda::MatmulRowBuckets(max_rows);
  }
  Status RunStep(int32_t bucket, const std::function<void()>& issue_ops) override;
  void DropGraphs() override { graphs_.Clear(); }

  // Ops (cuda_device_ops.cc).
  void Embedding(const Buffer& table, int32_t hidden, Buffer& out) override;
  void RmsNorm(const Buffer& x, const Buffer& weight, int32_t rows, int32_t hidden, float eps,
               Buffer& out) override;
  void AddRmsNorm(Buffer& residual, const Buffer& delta, const Buffer& weight, int32_t rows,
                  int32_t hidden, float eps, Buffer& out) override;
  void Rope(Buffer& q, Buffer& k, int32_t num_q_heads, int32_t num_kv_heads,
            const RopeSpec& rope) override;
  void RopeKvWrite(Buffer& q, Buffer& k, const Buffer& v, int32_t num_q_heads, int32_t num_kv_heads,
                   const RopeSpec& rope, int32_t kv_width, Buffer& k_cache,
                   Buffer& v_cache) override;
  void SiluMul(const Buffer& gate, const Buffer& up, int32_t rows, int32_t width,
               Buffer& out) override;
  void KvWrite(const Buffer& k, const Buffer& v, int32_t kv_width, Buffer& k_cache,
               Buffer& v_cache) override;
  void Attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache,
                 const AttentionSpec& spec, Buffer& out) override;
  void RopeKvWriteAttention(Buffer& q, Buffer& k, const Buffer& v, const RopeSpec& rope,
                            int32_t kv_width, Buffer& k_cache, Buffer& v_cache,
                            const AttentionSpec& spec, Buffer& out) override;
  void GatherRows(const Buffer& x, int32_t width, Buffer& out) override;

  // Products (cuda_device_linear.cc).
  void Linear(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows, int32_t in,
              int32_t out, Buffer& y) override;
  void LinearAddRmsNorm(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows,
                        int32_t in, int32_t out, Buffer& y, Buffer& residual,
                        const Buffer& norm_weight, float eps, Buffer& norm_out) override;
  void LinearGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows,
                   int32_t in) override;
  void SwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up, int32_t rows,
              int32_t in, Buffer& act) override;

  // Sampling (cuda_device_sampling.cc).
  bool can_sample() const override { return true; }
  bool can_apply_token_masks() const override { return tuning_.token_masks; }
  Status Sample(Buffer& logits, int32_t vocab, std::span<const RowSampling> rows,
                std::vector<int32_t>& tokens, std::vector<float>& logprobs) override;

 private:
  // cuda_device_ops.cc
  const float* RopeTable(const RopeSpec& rope);
  bool EnsureAttentionWorkspace(const cuda::AttentionShape& shape);
  cuda::DecodeCombine DecodeCombineMode() const;  // SLUICE_CUDA_DECODE_FUSED_COMBINE
  // cuda_device_linear.cc
  void Matmul(const void* x, const void* weight, const Buffer* bias, int32_t rows, int32_t in,
              int32_t out, Buffer& y);
  void GptqLinear(const Buffer& x, const cuda::GptqCudaWeight& w, const Buffer* bias, int32_t rows,
                  int32_t in, int32_t out, Buffer& y);
  bool GptqSmallBatch(const cuda::GptqCudaWeight& w, int32_t rows, const Buffer& y) const;
  cuda::GptqParts GptqPartsOf(std::span<const LinearPart> parts);
  const cuda::bf16* GptqInput(const Buffer& x, const cuda::GptqLayout& layout, int32_t rows);
  bool GptqGemm(const cuda::GptqCudaWeight& w, int32_t rows, const Buffer& y) const;
  void GptqGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows);
  void GptqSwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up, int32_t rows,
                  int32_t in, Buffer& act);
  void GptqLinearAddRmsNorm(const Buffer& x, const cuda::GptqCudaWeight& w, const Buffer* bias,
                            int32_t rows, int32_t in, int32_t out, Buffer& y, Buffer& residual,
                            const Buffer& norm_weight, float eps, Buffer& norm_out);
  float* Partials(size_t bytes);
  // cuda_device.cc
  void Fail(Status st);
  Status TakeStepError();
  void Prof(const char* op, int32_t out = 0, int32_t in = 0);
  Status Sync(std::string_view what);

  // Constant after Init.
  const CudaDeviceOptions options_;
  const cuda::CudaTuning tuning_;
  std::string name_;

  // Teardown (~CudaDevice): the profiler's events, the graphs and the plans go first, then
  // the stream is drained; the members below then go in reverse order, the stream last.
  cuda::UniqueStream stream_;
  cuda::DeviceScratch blas_workspace_;
  cuda::UniqueBlasLt blas_;
  cuda::MatmulPlans plans_{cuda::Tuning().matmul_exact_rows};
  cuda::WeightUpload weight_upload_;  // its staging is freed at the first step

  // The step.
  cuda::StepLayout step_layout_;
  cuda::DeviceStep dstep_;
  const RopeSpec* rope_for_ = nullptr;
  cuda::DeviceScratch rope_table_;
  cuda::DeviceScratch attention_ws_;
  cuda::DeviceScratch gemv_ws_;      // the K-split GEMV's partial sums and counters
  cuda::DeviceScratch partials_ws_;  // LinearAddRmsNorm's partial sums
  // GPTQ: the dequantized weight of a large product (and the load's qweight staging), the
  // permuted x of an act-order decode or GEMM product, the GEMM's slices, the last row order
  // loaded (shared by equal ones).
  cuda::DeviceScratch gptq_dequant_;
  cuda::DeviceScratch gptq_x_;
  cuda::DeviceScratch gptq_gemm_ws_;  // the GEMM's fp32 slices (GptqGemmWorkspaceBytes)
  // An act-order prefill's x in the sorted row order; reaches its peak in the profiling pass.
  cuda::DeviceScratch gptq_x_prefill_;
  std::shared_ptr<const cuda::GptqRowOrder> gptq_order_;
  // Past the GEMMs' rows, the next product's weight dequantized during this one's GEMM; its
  // first slot is gptq_dequant_ (SLUICE_CUDA_GPTQ_DEQUANT_AHEAD).
  cuda::GptqDequantAhead gptq_ahead_;

  // Sampling.
  cuda::PinnedScratch sample_host_;
  cuda::DeviceScratch sample_io_;
  cuda::DeviceScratch sample_ws_;

  cuda::GraphCache graphs_;
  bool capturing_ = false;
  std::unique_ptr<cuda::StepProfiler> profiler_;  // SLUICE_CUDA_PROFILE=1 only
  Status step_error_;
};

}  // namespace sluice::llm

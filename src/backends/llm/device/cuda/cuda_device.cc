#include "backends/llm/device/cuda/cuda_device.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "backends/llm/device/cuda/ab_switch.h"
#include "backends/llm/device/cuda/cublaslt_plans.h"
#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/gptq_weights.h"
#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/step_profiler.h"

namespace sluice::llm {
namespace {

using cuda::Bf16;
using cuda::BlasError;
using cuda::CudaBuffer;
using cuda::CudaError;
using cuda::DeviceScratch;
using cuda::GptqCudaWeight;
using cuda::PinnedScratch;
using cuda::Ptr;


constexpr size_t kBlasWorkspaceBytes = 32u << 20;
constexpr size_t kLoadChunkBytes = 32u << 20;

class CudaDevice final : public Device {
 public:
  explicit CudaDevice(const CudaDeviceOptions& options) : options_(options) {}

  ~CudaDevice() override {
    // Order: graphs, plans and the profiler's events reference the stream and the handle.
    profiler_.reset();
    DropGraphs();
    plans_.Clear();
    if (stream_) cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : load_events_) {
      if (e) cudaEventDestroy(e);
    }
    if (blas_) cublasLtDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status Init() {
    SLUICE_CUDA_RETURN(cudaSetDevice(options_.device_id), "cudaSetDevice");
    SLUICE_CUDA_RETURN(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                       "cudaStreamCreate");
    if (cublasStatus_t s = cublasLtCreate(&blas_); s != CUBLAS_STATUS_SUCCESS) {
      return BlasError(s, "cublasLtCreate");
    }
    ASSIGN_OR_RETURN(bool moved, blas_workspace_.Ensure(kBlasWorkspaceBytes));
    (void)moved;
    cudaDeviceProp prop{};
    SLUICE_CUDA_RETURN(cudaGetDeviceProperties(&prop, options_.device_id),
                       "cudaGetDeviceProperties");
    name_ = std::string("cuda:") + std::to_string(options_.device_id) + " (" + prop.name + ")";
    if (cuda::StepProfiler::EnabledFromEnv()) {
      profiler_ = std::make_unique<cuda::StepProfiler>(stream_);
    }
    return Status::Ok();
  }

  std::string_view name() const override { return name_; }
  DType activation_dtype() const override { return DType::kBF16; }

  // --- Memory ---

  Result<std::unique_ptr<Buffer>> Allocate(DType dtype, size_t elements) override {
    void* ptr = nullptr;
    const size_t bytes = std::max<size_t>(1, elements * DTypeSize(dtype));
    if (cudaError_t e = cudaMalloc(&ptr, bytes); e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free allocation error
      return CudaError(e, "cudaMalloc of " + std::to_string(bytes) + " bytes on " + name_);
    }
    return std::unique_ptr<Buffer>(new CudaBuffer(dtype, elements, ptr));
  }

  // Weights of any float dtype become bf16 on the device.
  Result<std::unique_ptr<Buffer>> LoadWeight(DType dtype, const void* host, size_t elements,
                                             std::shared_ptr<const void> /*keep_alive*/) override {
    ASSIGN_OR_RETURN(auto out, Allocate(DType::kBF16, elements));
    RETURN_IF_ERROR(UploadWeight(dtype, host, elements, Bf16(*out)));
    return out;
  }

  // The group's weights back to back in one allocation, so that LinearGroup can run them
  // as one product (a decode step's q|k|v or gate|up GEMV).
  Result<std::vector<std::unique_ptr<Buffer>>> LoadWeightGroup(
      std::span<const WeightSource> parts) override {
    size_t total = 0;
    for (const WeightSource& p : parts) total += p.elements;
    void* raw = nullptr;
    if (cudaError_t e = cudaMalloc(&raw, std::max<size_t>(1, total * sizeof(cuda::bf16)));
        e != cudaSuccess) {
      cudaGetLastError();
      return CudaError(e, "cudaMalloc of a weight group on " + name_);
    }
    std::shared_ptr<void> shared(raw, [](void* p) { cudaFree(p); });
    std::vector<std::unique_ptr<Buffer>> out;
    size_t offset = 0;
    for (const WeightSource& p : parts) {
      cuda::bf16* dst = static_cast<cuda::bf16*>(raw) + offset;
      RETURN_IF_ERROR(UploadWeight(p.dtype, p.host, p.elements, dst));
      out.push_back(std::make_unique<CudaBuffer>(DType::kBF16, p.elements, dst, shared));
      offset += p.elements;
    }
    return out;
  }

  // GPTQ weights stay quantized (gptq_weights.h). Two scratches serve them all, sized here
  // for the largest weight so that no step grows them: the dequantized bf16 weight of a
  // product too large for the small-batch kernel (which also stages the checkpoint's qweight
  // during the load), and the act-order permutation of a decode batch's x.
  Result<std::unique_ptr<Buffer>> LoadGptqWeight(const GptqWeightSource& source) override {
    if (source.in < 1 || source.out < 1) return InvalidArgument("GPTQ weight: empty shape");
    const size_t dequant = static_cast<size_t>(source.in) * source.out * sizeof(cuda::bf16);
    ASSIGN_OR_RETURN(bool moved, gptq_dequant_.Ensure(dequant));
    const size_t x_rows = std::max(cuda::kGptqSmallBatchMaxRows, cuda::GptqMmaMaxRows());
    ASSIGN_OR_RETURN(bool moved_x,
                     gptq_x_.Ensure(static_cast<size_t>(source.in) * x_rows * sizeof(cuda::bf16)));
    if (moved || moved_x) DropGraphs();
    ASSIGN_OR_RETURN(auto weight,
                     cuda::LoadGptqCudaWeight(source, gptq_dequant_.ptr, gptq_dequant_.bytes,
                                              gptq_order_, stream_));
    return std::unique_ptr<Buffer>(std::move(weight));
  }

  // Streams host weights through two pinned chunks, so that reading the (memory-mapped)
  // file overlaps the copy engine; fp32 and fp16 chunks land in a raw device chunk and a
  // kernel converts them to bf16.
  Status UploadWeight(DType dtype, const void* host, size_t elements, cuda::bf16* dst) {
    if (dtype == DType::kI32) return InvalidArgument("cuda device: int32 weights are not supported");
    RETURN_IF_ERROR(EnsureLoadStaging());
    const size_t elem = DTypeSize(dtype);
    const size_t chunk_elems = kLoadChunkBytes / elem;
    const int kind = dtype == DType::kF32 ? 0 : dtype == DType::kBF16 ? 1 : 2;
    const auto* src = static_cast<const std::byte*>(host);
    for (size_t first = 0, i = 0; first < elements; first += chunk_elems, ++i) {
      const size_t n = std::min(chunk_elems, elements - first);
      const int slot = static_cast<int>(i % 2);
      SLUICE_CUDA_RETURN(cudaEventSynchronize(load_events_[slot]), "weight upload");
      std::byte* pinned = static_cast<std::byte*>(load_pinned_.ptr) + slot * kLoadChunkBytes;
      std::memcpy(pinned, src + first * elem, n * elem);
      if (kind == 1) {
        SLUICE_CUDA_RETURN(cudaMemcpyAsync(dst + first, pinned, n * elem, cudaMemcpyHostToDevice,
                                           stream_),
                           "weight upload");
      } else {
        std::byte* raw = static_cast<std::byte*>(load_raw_.ptr) + slot * kLoadChunkBytes;
        SLUICE_CUDA_RETURN(
            cudaMemcpyAsync(raw, pinned, n * elem, cudaMemcpyHostToDevice, stream_),
            "weight upload");
        cuda::ConvertToBf16(raw, kind, dst + first, n, stream_);
      }
      SLUICE_CUDA_RETURN(cudaEventRecord(load_events_[slot], stream_), "weight upload");
    }
    SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream_), "weight upload");
    SLUICE_CUDA_RETURN(cudaGetLastError(), "weight conversion");
    return Status::Ok();
  }

  Status Upload(Buffer& dst, const void* host, size_t bytes) override {
    SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream_), "upload");
    SLUICE_CUDA_RETURN(cudaMemcpy(Ptr<void>(dst), host, bytes, cudaMemcpyHostToDevice), "upload");
    return Status::Ok();
  }

  Status Download(const Buffer& src, void* host, size_t bytes) override {
    RETURN_IF_ERROR(Sync("step"));
    if (profiler_) profiler_->EndStep();
    SLUICE_CUDA_RETURN(cudaMemcpy(host, Ptr<void>(src), bytes, cudaMemcpyDeviceToHost),
                       "download");
    return Status::Ok();
  }

  std::optional<DeviceMemory> memory() const override {
    DeviceMemory m;
    if (cudaMemGetInfo(&m.free, &m.total) != cudaSuccess) return std::nullopt;
    return m;
  }

  // --- Step ---

  // Lays the step out in fixed regions of one int32 array (sized by capacities, not by this
  // step's counts) so that the arrays' addresses stay put for graph replays, and copies it
  // up in one transfer.
  Status BeginStep(const StepMetadata& step) override {
    ReleaseLoadStaging();  // weights are all loaded before the first step
    if (!step_error_.ok()) return step_error_;
    const int32_t rows = step.num_rows();
    const int32_t seqs = static_cast<int32_t>(step.seqs.size());
    const int32_t blocks = static_cast<int32_t>(step.block_tables.size());
    const int32_t logit_rows = static_cast<int32_t>(step.logit_rows.size());
    if (profiler_) profiler_->BeginStep(rows, rows == seqs);
    if (rows > cap_rows_ || seqs > cap_seqs_ || blocks > cap_blocks_ || logit_rows > cap_rows_) {
      cap_rows_ = std::max({cap_rows_, rows, logit_rows, 256});
      cap_seqs_ = std::max({cap_seqs_, seqs, 256});
      cap_blocks_ = std::max({cap_blocks_ * 2, blocks, 4096});
      const size_t ints = MetaInts();
      ASSIGN_OR_RETURN(bool moved, meta_.Ensure(ints * sizeof(int32_t)));
      RETURN_IF_ERROR(meta_host_.Ensure(ints * sizeof(int32_t)));
      if (moved) DropGraphs();
    }
    auto* h = static_cast<int32_t*>(meta_host_.ptr);
    auto region = [&](int index) { return h + RegionOffset(index); };
    std::copy(step.tokens.begin(), step.tokens.end(), region(0));
    std::copy(step.positions.begin(), step.positions.end(), region(1));
    std::copy(step.slots.begin(), step.slots.end(), region(2));
    std::copy(step.logit_rows.begin(), step.logit_rows.end(), region(3));
    int32_t* row_seq = region(4);
    int32_t max_new = 0;
    for (int32_t s = 0; s < seqs; ++s) {
      const StepSequence& q = step.seqs[s];
      region(5)[s] = q.first_row;
      region(6)[s] = q.num_new;
      region(7)[s] = q.num_cached;
      region(8)[s] = q.block_table_begin;
      for (int32_t j = 0; j < q.num_new; ++j) row_seq[q.first_row + j] = s;
      max_new = std::max(max_new, q.num_new);
    }
    std::copy(step.block_tables.begin(), step.block_tables.end(), region(9));
    const size_t used = RegionOffset(9) + static_cast<size_t>(blocks);
    SLUICE_CUDA_RETURN(cudaMemcpyAsync(meta_.ptr, meta_host_.ptr, used * sizeof(int32_t),
                                       cudaMemcpyHostToDevice, stream_),
                       "step metadata upload");
    auto* d = static_cast<const int32_t*>(meta_.ptr);
    cuda::DeviceStep& ds = dstep_;
    ds.tokens = d + RegionOffset(0);
    ds.positions = d + RegionOffset(1);
    ds.slots = d + RegionOffset(2);
    ds.logit_rows = d + RegionOffset(3);
    ds.row_seq = d + RegionOffset(4);
    ds.seq_first_row = d + RegionOffset(5);
    ds.seq_num_new = d + RegionOffset(6);
    ds.seq_num_cached = d + RegionOffset(7);
    ds.seq_block_begin = d + RegionOffset(8);
    ds.block_tables = d + RegionOffset(9);
    ds.rows = rows;
    ds.num_seqs = seqs;
    ds.num_logit_rows = logit_rows;
    ds.block_size = step.block_size;
    ds.max_num_new = max_new;
    ds.max_context = step.max_context;
    return Status::Ok();
  }

  int32_t GraphBucket(int32_t num_seqs) const override {
    if (options_.enforce_eager || num_seqs < 1 || num_seqs > options_.max_graph_batch) return 0;
    if (num_seqs <= 4) return num_seqs == 3 ? 4 : num_seqs;
    return std::min(options_.max_graph_batch, (num_seqs + 7) / 8 * 8);
  }

  Status RunStep(int32_t bucket, const std::function<void()>& issue_ops) override {
    if (bucket == 0) {
      issue_ops();
      return TakeStepError();
    }
    // A graph step's kernels must size their grids for any context up to the model's
    // length, since the same graph replays every later step of this bucket.
    dstep_.max_context = std::max(dstep_.max_context, options_.max_model_len);
    auto it = graphs_.find(bucket);
    if (it == graphs_.end()) {
      if (!warmed_.contains(bucket)) {
        // First sight of the bucket: run eagerly, so that every workspace and cuBLASLt plan
        // exists (and stays) before a capture records their addresses.
        warmed_.insert(bucket);
        issue_ops();
        return TakeStepError();
      }
      SLUICE_CUDA_RETURN(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                         "graph capture");
      capturing_ = true;
      issue_ops();
      capturing_ = false;
      cudaGraph_t graph = nullptr;
      cudaError_t e = cudaStreamEndCapture(stream_, &graph);
      Status st = TakeStepError();
      if (e != cudaSuccess || !st.ok()) {
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        return st.ok() ? CudaError(e, "graph capture") : st;
      }
      cudaGraphExec_t exec = nullptr;
      e = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      SLUICE_CUDA_RETURN(e, "graph instantiate");
      it = graphs_.emplace(bucket, exec).first;
    }
    SLUICE_CUDA_RETURN(cudaGraphLaunch(it->second, stream_), "graph launch");
    if (profiler_) profiler_->MarkGraph();
    return Status::Ok();
  }

  void DropGraphs() override {
    for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
    graphs_.clear();
  }

  size_t num_graphs() const { return graphs_.size(); }
  cudaStream_t stream() const { return stream_; }

  // --- Ops ---

  void Embedding(const Buffer& table, int32_t hidden, Buffer& out) override {
    cuda::Embedding(Bf16(table), dstep_.tokens, dstep_.rows, hidden, Bf16(out), stream_);
    Prof("Embedding");
  }

  void RmsNorm(const Buffer& x, const Buffer& weight, int32_t rows, int32_t hidden, float eps,
               Buffer& out) override {
    cuda::RmsNorm(Bf16(x), Bf16(weight), rows, hidden, eps, Bf16(out), stream_);
    Prof("RmsNorm");
  }

  void AddRmsNorm(Buffer& residual, const Buffer& delta, const Buffer& weight, int32_t rows,
                  int32_t hidden, float eps, Buffer& out) override {
    cuda::AddRmsNorm(Bf16(residual), Bf16(delta), Bf16(weight), rows, hidden, eps, Bf16(out),
                     stream_);
    Prof("AddRmsNorm");
  }

  // y = x W^T: in cuBLASLt's column-major terms, y^T [out, rows] = W [in, out]^T x^T [in, rows].
  void Linear(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows, int32_t in,
              int32_t out, Buffer& y) override {
    if (const auto* q = dynamic_cast<const GptqCudaWeight*>(&weight)) {
      return GptqLinear(x, *q, bias, rows, in, out, y);
    }
    const bool f32_out = y.dtype() == DType::kF32;
    if (small_batch_gemv_ && cuda::SmallBatchLinearFits(rows, in)) {
      const size_t need = cuda::SmallBatchLinearWorkspaceBytes(in, out);
      if (need > gemv_ws_.bytes) {
        if (capturing_) return Fail(Internal("GEMV workspace grew during graph capture"));
        Result<bool> moved = gemv_ws_.Ensure(need);
        if (!moved.ok()) return Fail(moved.status());
        // The split GEMV's counters start at zero, and every launch leaves them so.
        if (cudaError_t e = cudaMemsetAsync(gemv_ws_.ptr, 0, gemv_ws_.bytes, stream_);
            e != cudaSuccess) {
          return Fail(CudaError(e, "cudaMemsetAsync of the GEMV workspace"));
        }
        if (*moved) DropGraphs();
      }
      cuda::SmallBatchLinear(Bf16(x), Bf16(weight), bias ? Bf16(*bias) : nullptr, rows, in, out,
                             Ptr<void>(y), f32_out, gemv_ws_.ptr, gemv_ws_.bytes, stream_);
      return Prof("Linear (GEMV)", out, in);
    }
    Matmul(x, Ptr<void>(weight), bias, rows, in, out, y);
  }

  // y = x W^T through cuBLASLt, W bf16 [out, in] at `weight`.
  void Matmul(const Buffer& x, const void* weight, const Buffer* bias, int32_t rows, int32_t in,
              int32_t out, Buffer& y) {
    const bool f32_out = y.dtype() == DType::kF32;
    Result<cuda::MatmulPlan*> plan = plans_.Get(blas_, blas_workspace_.bytes, !capturing_, rows,
                                                in, out, f32_out, bias != nullptr);
    if (!plan.ok()) return Fail(plan.status());
    cuda::MatmulPlan& p = **plan;
    if (bias != nullptr) {
      const void* bias_ptr = Ptr<void>(*bias);
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr,
                                     sizeof(bias_ptr));
    }
    const float alpha = 1.f, beta = 0.f;
    cublasStatus_t s =
        cublasLtMatmul(blas_, p.desc, &alpha, weight, p.a, Ptr<void>(x), p.b, &beta, Ptr<void>(y),
                       p.c, Ptr<void>(y), p.c, p.has_algo ? &p.algo : nullptr, blas_workspace_.ptr,
                       blas_workspace_.bytes, stream_);
    if (s != CUBLAS_STATUS_SUCCESS) return Fail(BlasError(s, "cublasLtMatmul"));
    Prof("Linear (cuBLASLt)", out, in);
  }

  // A GPTQ product: decode batches (bf16 y) through the tensor-core or small-batch kernel,
  // which read the packed weights (x permuted first for act-order); larger ones dequantize the
  // weight into the scratch and run the cuBLASLt GEMM (exllama's approach for prefill).
  void GptqLinear(const Buffer& x, const GptqCudaWeight& w, const Buffer* bias, int32_t rows,
                  int32_t in, int32_t out, Buffer& y) {
    if (w.layout().in != in || w.out() != out) {
      return Fail(Internal("GPTQ weight used with another shape"));
    }
    if (GptqSmallBatch(w, rows, y)) {
      const LinearPart part{&w, bias, out, &y};
      return GptqGroup(x, {&part, 1}, rows);
    }
    cuda::GptqDequantize(w.layout(), w.qweight(), w.scale_zero(), out,
                         static_cast<cuda::bf16*>(gptq_dequant_.ptr), stream_);
    Prof("GPTQ dequantize", out, in);
    Matmul(x, gptq_dequant_.ptr, bias, rows, in, out, y);
  }

  bool GptqSmallBatch(const GptqCudaWeight& w, int32_t rows, const Buffer& y) const {
    return small_batch_gemv_ && rows >= 1 && rows <= cuda::GptqSmallBatchRows(w.layout()) &&
           y.dtype() == DType::kBF16;
  }

  // Parts of GPTQ weights of one row order (GptqCudaWeight::order) in one small-batch launch.
  void GptqGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows) {
    const auto& first = static_cast<const GptqCudaWeight&>(*parts[0].weight);
    const cuda::GptqLayout& layout = first.layout();
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
    const cuda::bf16* input = Bf16(x);
    if (layout.perm != nullptr) {
      cuda::GptqPermuteRows(input, layout.perm, rows, layout.in,
                            static_cast<cuda::bf16*>(gptq_x_.ptr), stream_);
      input = static_cast<cuda::bf16*>(gptq_x_.ptr);
    }
    cuda::GptqSmallBatchLinear(input, layout, g, rows, stream_);
    Prof(layout.mma ? "Linear (GPTQ mma)" : "Linear (GPTQ GEMV)", end, layout.in);
  }

  // In decode steps the product's slices (gemv.cu SplitsFor) are added by the norm that
  // consumes it instead of by the product's own last blocks (a threadfence, an atomic and a
  // read of the partials on the step's critical path), which lets o be cut in 2: 7B step on
  // an H200 4.11 -> 4.07 ms; for down, cut in 4 either way, it measured level.
  void LinearAddRmsNorm(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows,
                        int32_t in, int32_t out, Buffer& y, Buffer& residual,
                        const Buffer& norm_weight, float eps, Buffer& norm_out) override {
    if (dynamic_cast<const GptqCudaWeight*>(&weight) != nullptr) {
      return Device::LinearAddRmsNorm(x, weight, bias, rows, in, out, y, residual, norm_weight, eps,
                                      norm_out);
    }
    const int splits = partials_norm_ && small_batch_gemv_
                           ? cuda::SmallBatchLinearPartialSplits(rows, in, out)
                           : 0;
    if (splits < 1 || splits > partials_max_splits_ ||
        !cuda::AddRmsNormPartialsFits(out, splits)) {
      return Device::LinearAddRmsNorm(x, weight, bias, rows, in, out, y, residual, norm_weight,
                                      eps, norm_out);
    }
    float* partials = Partials(cuda::SmallBatchLinearPartialsBytes(rows, in, out));
    if (partials == nullptr) return;
    cuda::SmallBatchLinearPartials(Bf16(x), Bf16(weight), rows, in, out, partials, stream_);
    Prof("Linear (GEMV partials)", out, in);
    cuda::AddRmsNormPartials(Bf16(residual), partials, splits, bias ? Bf16(*bias) : nullptr,
                             Bf16(norm_weight), rows, out, eps, Bf16(norm_out), stream_);
    Prof("AddRmsNorm (partials)");
  }

  // A decode step's q|k|v or gate|up as one GEMV launch when the weights sit back to back
  // (LoadWeightGroup) and the outputs are bf16; otherwise one Linear each.
  void LinearGroup(const Buffer& x, std::span<const LinearPart> parts, int32_t rows,
                   int32_t in) override {
    if (!parts.empty() && dynamic_cast<const GptqCudaWeight*>(parts[0].weight) != nullptr) {
      // GPTQ parts of one row order run as one small-batch product.
      const auto* first = static_cast<const GptqCudaWeight*>(parts[0].weight);
      bool fused = fuse_ && parts.size() <= cuda::kGptqMaxParts;
      for (size_t i = 0; fused && i < parts.size(); ++i) {
        const auto* w = dynamic_cast<const GptqCudaWeight*>(parts[i].weight);
        fused = w != nullptr && w->order() == first->order() && w->out() == parts[i].out &&
                w->layout().in == in && w->layout().mma == first->layout().mma &&
                GptqSmallBatch(*w, rows, *parts[i].y);
      }
      if (!fused) return Device::LinearGroup(x, parts, rows, in);
      return GptqGroup(x, parts, rows);
    }
    bool fused = fuse_ && small_batch_gemv_ && cuda::SmallBatchLinearFits(rows, in) &&
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
    cuda::SmallBatchLinearGroup(Bf16(x), Bf16(*parts[0].weight), g, rows, in, stream_);
    Prof("LinearGroup (GEMV)", end, in);
  }

  // Decode steps of <= 4 rows read gate's and up's rows in one launch that writes the
  // activation directly (gate|up back to back, as LoadWeightGroup places them).
  void SwiGlu(const Buffer& x, const LinearPart& gate, const LinearPart& up, int32_t rows,
              int32_t in, Buffer& act) override {
    if (dynamic_cast<const GptqCudaWeight*>(gate.weight) != nullptr ||
        dynamic_cast<const GptqCudaWeight*>(up.weight) != nullptr) {
      return Device::SwiGlu(x, gate, up, rows, in, act);  // gate|up as one GPTQ product
    }
    if (!fuse_ || !small_batch_gemv_ || !cuda::SmallBatchLinearFits(rows, in) ||
        gate.out != up.out || act.dtype() != DType::kBF16 ||
        Bf16(*up.weight) != Bf16(*gate.weight) + static_cast<size_t>(gate.out) * in) {
      return Device::SwiGlu(x, gate, up, rows, in, act);
    }
    cuda::SmallBatchSwiGlu(Bf16(x), Bf16(*gate.weight), gate.bias ? Bf16(*gate.bias) : nullptr,
                           up.bias ? Bf16(*up.bias) : nullptr, rows, in, gate.out, Bf16(act),
                           stream_);
    Prof("SwiGlu (GEMV)", 2 * gate.out, in);
  }

  void Rope(Buffer& q, Buffer& k, int32_t num_q_heads, int32_t num_kv_heads,
            const RopeSpec& rope) override {
    const float* table = RopeTable(rope);
    if (table == nullptr) return;
    cuda::Rope(Bf16(q), Bf16(k), dstep_.positions, table, dstep_.rows, num_q_heads, num_kv_heads,
               rope.head_dim, stream_);
    Prof("Rope");
  }

  void RopeKvWrite(Buffer& q, Buffer& k, const Buffer& v, int32_t num_q_heads,
                   int32_t num_kv_heads, const RopeSpec& rope, int32_t kv_width, Buffer& k_cache,
                   Buffer& v_cache) override {
    if (!fuse_ || kv_width != num_kv_heads * rope.head_dim) {
      return Device::RopeKvWrite(q, k, v, num_q_heads, num_kv_heads, rope, kv_width, k_cache,
                                 v_cache);
    }
    const float* table = RopeTable(rope);
    if (table == nullptr) return;
    cuda::RopeKvWrite(Bf16(q), Bf16(k), Bf16(v), dstep_.positions, table, dstep_.slots,
                      dstep_.rows, num_q_heads, num_kv_heads, rope.head_dim, Bf16(k_cache),
                      Bf16(v_cache), stream_);
    Prof("RopeKvWrite");
  }

  // The device copy of rope.inv_freq, uploaded when `rope` is new (never during a capture);
  // null after a failure, which is recorded.
  const float* RopeTable(const RopeSpec& rope) {
    if (rope_for_ != &rope) {
      if (capturing_) {
        Fail(Internal("rope table first uploaded during graph capture"));
        return nullptr;
      }
      std::vector<float> inv(rope.inv_freq.begin(), rope.inv_freq.end());
      Result<bool> moved = rope_table_.Ensure(inv.size() * sizeof(float));
      if (!moved.ok()) {
        Fail(moved.status());
        return nullptr;
      }
      if (*moved) DropGraphs();
      cudaMemcpyAsync(rope_table_.ptr, inv.data(), inv.size() * sizeof(float),
                      cudaMemcpyHostToDevice, stream_);
      cudaStreamSynchronize(stream_);  // `inv` dies at the end of this scope
      rope_for_ = &rope;
    }
    return static_cast<const float*>(rope_table_.ptr);
  }

  void SiluMul(const Buffer& gate, const Buffer& up, int32_t rows, int32_t width,
               Buffer& out) override {
    cuda::SiluMul(Bf16(gate), Bf16(up), rows, width, width, Bf16(out), stream_);
    Prof("SiluMul");
  }

  void KvWrite(const Buffer& k, const Buffer& v, int32_t kv_width, Buffer& k_cache,
               Buffer& v_cache) override {
    cuda::KvWrite(Bf16(k), Bf16(v), kv_width, dstep_.slots, dstep_.rows, kv_width, Bf16(k_cache),
                  Bf16(v_cache), stream_);
    Prof("KvWrite");
  }

  void Attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache,
                 const AttentionSpec& spec, Buffer& out) override {
    if (!(spec.head_dim == 16 || (spec.head_dim % 32 == 0 && spec.head_dim <= 256))) {
      return Fail(Unsupported("the CUDA attention kernels support head_dim 16 or a multiple of "
                              "32 up to 256, not " + std::to_string(spec.head_dim)));
    }
    const cuda::AttentionShape shape{spec.num_q_heads, spec.num_kv_heads, spec.head_dim,
                                     spec.scale};
    const size_t need = cuda::AttentionWorkspaceBytes(dstep_, shape);
    if (need > attention_ws_.bytes) {
      if (capturing_) return Fail(Internal("attention workspace grew during graph capture"));
      Result<bool> moved = attention_ws_.Ensure(need);
      if (!moved.ok()) return Fail(moved.status());
      if (*moved) DropGraphs();
    }
    cuda::Attention(Bf16(q), spec.num_q_heads * spec.head_dim, Bf16(k_cache), Bf16(v_cache),
                    dstep_, shape, attention_ws_.ptr, attention_ws_.bytes, Bf16(out), stream_,
                    prefill_tensor_cores_ ? cuda::PrefillPath::kAuto
                                          : cuda::PrefillPath::kCudaCores);
    Prof("Attention");
  }

  void GatherRows(const Buffer& x, int32_t width, Buffer& out) override {
    cuda::GatherRows(Bf16(x), dstep_.logit_rows, dstep_.num_logit_rows, width, Bf16(out), stream_);
    Prof("GatherRows");
  }

  // --- Sampling ---

  bool can_sample() const override { return true; }

  Status Sample(Buffer& logits, int32_t vocab, std::span<const RowSampling> rows,
                std::vector<int32_t>& tokens, std::vector<float>& logprobs) override {
    const int32_t n = static_cast<int32_t>(rows.size());
    if (n == 0) return Status::Ok();
    if (logits.dtype() != DType::kF32 || logits.elements() < static_cast<size_t>(n) * vocab) {
      return Internal("sample: logits buffer too small");
    }
    size_t num_penalties = 0;
    for (const RowSampling& r : rows) num_penalties += r.penalties.size();
    // One upload: rows | penalty tokens | penalty info; one download: tokens | logprobs.
    const size_t rows_bytes = Align(n * sizeof(cuda::SamplingRow));
    const size_t tok_bytes = Align(num_penalties * sizeof(int32_t));
    const size_t info_bytes = Align(num_penalties * sizeof(cuda::PenaltyInfo));
    const size_t in_bytes = rows_bytes + tok_bytes + info_bytes;
    const size_t out_bytes = Align(n * sizeof(int32_t)) + Align(n * sizeof(float));
    RETURN_IF_ERROR(sample_host_.Ensure(in_bytes + out_bytes));
    ASSIGN_OR_RETURN(bool moved_in, sample_io_.Ensure(in_bytes + out_bytes));
    const size_t ws_need = cuda::SamplingWorkspaceBytes(n, vocab);
    ASSIGN_OR_RETURN(bool moved_ws, sample_ws_.Ensure(std::max<size_t>(ws_need, 1)));
    (void)moved_in;
    (void)moved_ws;  // sampling runs outside graphs

    auto* host = static_cast<std::byte*>(sample_host_.ptr);
    auto* row_h = reinterpret_cast<cuda::SamplingRow*>(host);
    auto* tok_h = reinterpret_cast<int32_t*>(host + rows_bytes);
    auto* info_h = reinterpret_cast<cuda::PenaltyInfo*>(host + rows_bytes + tok_bytes);
    int32_t next = 0;
    for (int32_t i = 0; i < n; ++i) {
      const RowSampling& r = rows[i];
      cuda::SamplingRow& d = row_h[i];
      d = {};
      d.temperature = r.temperature;
      d.top_k = r.top_k;
      d.top_p = r.top_p;
      d.min_p = r.min_p;
      d.repetition_penalty = r.repetition_penalty;
      d.presence_penalty = r.presence_penalty;
      d.frequency_penalty = r.frequency_penalty;
      d.seed = r.seed;
      d.offset = r.offset;
      d.penalty_begin = next;
      d.penalty_count = static_cast<int32_t>(r.penalties.size());
      for (const PenaltyToken& p : r.penalties) {
        tok_h[next] = p.token;
        info_h[next] = {p.output_count, static_cast<uint8_t>(p.seen),
                        static_cast<uint8_t>(p.suppressed)};
        ++next;
      }
    }
    auto* dev = static_cast<std::byte*>(sample_io_.ptr);
    SLUICE_CUDA_RETURN(cudaMemcpyAsync(dev, host, in_bytes, cudaMemcpyHostToDevice, stream_),
                       "sampling upload");
    auto* out_tokens = reinterpret_cast<int32_t*>(dev + in_bytes);
    auto* out_logprobs = reinterpret_cast<float*>(dev + in_bytes + Align(n * sizeof(int32_t)));
    cuda::Sample(Ptr<float>(logits), n, vocab, reinterpret_cast<const cuda::SamplingRow*>(dev),
                 reinterpret_cast<const int32_t*>(dev + rows_bytes),
                 reinterpret_cast<const cuda::PenaltyInfo*>(dev + rows_bytes + tok_bytes),
                 sample_ws_.ptr, sample_ws_.bytes, out_tokens, out_logprobs, stream_);
    Prof("Sample (with its upload)");
    SLUICE_CUDA_RETURN(cudaMemcpyAsync(host + in_bytes, dev + in_bytes, out_bytes,
                                       cudaMemcpyDeviceToHost, stream_),
                       "sampling download");
    RETURN_IF_ERROR(Sync("sampling"));
    if (profiler_) profiler_->EndStep();
    const auto* tokens_h = reinterpret_cast<const int32_t*>(host + in_bytes);
    const auto* logprobs_h =
        reinterpret_cast<const float*>(host + in_bytes + Align(n * sizeof(int32_t)));
    tokens.assign(tokens_h, tokens_h + n);
    logprobs.assign(logprobs_h, logprobs_h + n);
    return Status::Ok();
  }

 private:
  static size_t Align(size_t bytes) { return (bytes + 255) / 256 * 256; }

  // Metadata regions: 0 tokens, 1 positions, 2 slots, 3 logit_rows, 4 row_seq (cap_rows_
  // each), 5..8 per sequence (cap_seqs_ each), 9 block tables (cap_blocks_).
  size_t RegionOffset(int index) const {
    const size_t r = static_cast<size_t>(cap_rows_), s = static_cast<size_t>(cap_seqs_);
    if (index <= 5) return index * r;
    return 5 * r + (index - 5) * s;
  }
  size_t MetaInts() const { return RegionOffset(9) + static_cast<size_t>(cap_blocks_); }

  Status EnsureLoadStaging() {
    if (load_pinned_.ptr != nullptr) return Status::Ok();
    RETURN_IF_ERROR(load_pinned_.Ensure(2 * kLoadChunkBytes));
    ASSIGN_OR_RETURN(bool moved, load_raw_.Ensure(2 * kLoadChunkBytes));
    (void)moved;
    for (cudaEvent_t& e : load_events_) {
      SLUICE_CUDA_RETURN(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
      SLUICE_CUDA_RETURN(cudaEventRecord(e, stream_), "cudaEventRecord");
    }
    return Status::Ok();
  }

  void ReleaseLoadStaging() {
    if (load_pinned_.ptr == nullptr) return;
    cudaStreamSynchronize(stream_);
    for (cudaEvent_t& e : load_events_) {
      if (e) cudaEventDestroy(e);
      e = nullptr;
    }
    cudaFreeHost(load_pinned_.ptr);
    load_pinned_ = {};
    cudaFree(load_raw_.ptr);
    load_raw_.ptr = nullptr;
    load_raw_.bytes = 0;
  }

  // Ops return nothing (ops.h): the first failure of a step is kept and reported by the
  // step's RunStep / Download.
  void Fail(Status st) {
    if (step_error_.ok()) step_error_ = std::move(st);
  }
  Status TakeStepError() {
    Status st = std::move(step_error_);
    step_error_ = Status::Ok();
    if (!st.ok()) return st;
    SLUICE_CUDA_RETURN(cudaPeekAtLastError(), "kernel launch");
    return Status::Ok();
  }
  // Times the op just issued when profiling an eager step (step_profiler.h); `out` x `in`
  // names a product's shape.
  // The partial sums' scratch, grown to `bytes` (null, the step failed, if it cannot be).
  float* Partials(size_t bytes) {
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

  void Prof(const char* op, int32_t out = 0, int32_t in = 0) {
    if (!profiler_ || capturing_) return;
    profiler_->Op(out == 0 ? std::string(op)
                           : std::string(op) + " " + std::to_string(out) + "x" + std::to_string(in));
  }

  Status Sync(std::string_view what) {
    RETURN_IF_ERROR(TakeStepError());
    SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream_), std::string(what));
    SLUICE_CUDA_RETURN(cudaGetLastError(), std::string(what));
    return Status::Ok();
  }

  CudaDeviceOptions options_;
  // Decode batches of <= 4 rows go through Sluice's GEMV (gemv.cu) rather than cuBLASLt;
  // SLUICE_CUDA_GEMV=0 turns that off (for A/B measurements).
  bool small_batch_gemv_ = cuda::SwitchOn("SLUICE_CUDA_GEMV");
  // Fused ops: q|k|v and gate|up(+SiLU) as one GEMV launch each in small decode steps,
  // rope with the KV-cache write. SLUICE_CUDA_FUSE=0 runs each op on its own (A/B
  // measurements; the fused forms are bit-equal).
  bool fuse_ = cuda::SwitchOn("SLUICE_CUDA_FUSE");
  // Prefill attention on tensor cores where the head dim allows; SLUICE_CUDA_PREFILL_TC=0
  // runs the CUDA-core kernel (A/B measurements).
  bool prefill_tensor_cores_ = cuda::SwitchOn("SLUICE_CUDA_PREFILL_TC");
  // Output projections' slices added by the next norm (LinearAddRmsNorm);
  // SLUICE_CUDA_PARTIALS_NORM=0 runs a Linear, then AddRmsNorm (A/B measurements; bit-equal).
  bool partials_norm_ = cuda::SwitchOn("SLUICE_CUDA_PARTIALS_NORM");
  // ... for products of at most this many slices (SLUICE_CUDA_PARTIALS_MAX_SPLITS=2: o's, not
  // down's 4; A/B measurements).
  int partials_max_splits_ = [] {
    const char* v = std::getenv("SLUICE_CUDA_PARTIALS_MAX_SPLITS");
    return v != nullptr ? std::atoi(v) : cuda::kSmallBatchLinearMaxSplits;
  }();
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasLtHandle_t blas_ = nullptr;
  DeviceScratch blas_workspace_;
  cuda::MatmulPlans plans_;

  // Weight loading staging (freed at the first step).
  PinnedScratch load_pinned_;
  DeviceScratch load_raw_;
  std::array<cudaEvent_t, 2> load_events_{};

  // Step metadata.
  int32_t cap_rows_ = 0, cap_seqs_ = 0, cap_blocks_ = 0;
  DeviceScratch meta_;
  PinnedScratch meta_host_;
  cuda::DeviceStep dstep_;
  const RopeSpec* rope_for_ = nullptr;
  DeviceScratch rope_table_;
  DeviceScratch attention_ws_;
  DeviceScratch gemv_ws_;  // the K-split GEMV's partial sums and counters
  DeviceScratch partials_ws_;  // LinearAddRmsNorm's partial sums
  // GPTQ: the dequantized weight of a large product (and the load's qweight staging), the
  // permuted x of an act-order decode product, the last row order loaded (shared by equal ones).
  DeviceScratch gptq_dequant_;
  DeviceScratch gptq_x_;
  std::shared_ptr<const cuda::GptqRowOrder> gptq_order_;

  // Sampling.
  PinnedScratch sample_host_;
  DeviceScratch sample_io_;
  DeviceScratch sample_ws_;

  // Graphs.
  std::map<int32_t, cudaGraphExec_t> graphs_;
  std::set<int32_t> warmed_;
  bool capturing_ = false;
  std::unique_ptr<cuda::StepProfiler> profiler_;  // SLUICE_CUDA_PROFILE=1 only
  Status step_error_;
};

}  // namespace

int CudaDeviceCount(std::string* why_none) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why_none) *why_none = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0 && why_none) *why_none = "the CUDA driver reports no devices";
  return n;
}

void* CudaDeviceStream(Device& device) {
  auto* cuda = dynamic_cast<CudaDevice*>(&device);
  return cuda != nullptr ? cuda->stream() : nullptr;
}

Result<std::unique_ptr<Device>> CreateCudaDevice(const CudaDeviceOptions& options) {
  std::string why;
  const int n = CudaDeviceCount(&why);
  if (n == 0) return Unavailable("no usable CUDA GPU: " + why);
  if (options.device_id < 0 || options.device_id >= n) {
    return InvalidArgument("GPU " + std::to_string(options.device_id) + " does not exist (" +
                           std::to_string(n) + " visible)");
  }
  if (options.max_graph_batch < 0 || options.max_model_len < 0) {
    return InvalidArgument("cuda device: negative max_graph_batch or max_model_len");
  }
  auto device = std::make_unique<CudaDevice>(options);
  RETURN_IF_ERROR(device->Init());
  return std::unique_ptr<Device>(std::move(device));
}

}  // namespace sluice::llm

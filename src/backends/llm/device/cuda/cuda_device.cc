// The CUDA device (cuda_device.h, cuda_device_impl.h): its lifecycle, memory and weights, and
// the step (metadata upload, eager runs, graph capture and replay). The ops live in
// cuda_device_ops.cc, the products in cuda_device_linear.cc, sampling in
// cuda_device_sampling.cc.

#include "backends/llm/device/cuda/cuda_device.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <utility>

#include "backends/llm/device/cuda/cuda_device_impl.h"

namespace sluice::llm {

using cuda::Bf16;
using cuda::BlasError;
using cuda::CudaBuffer;
using cuda::CudaError;
using cuda::Ptr;

namespace {

constexpr size_t kBlasWorkspaceBytes = 32u << 20;

// The tuning's defaults are the kernels' (cuda_tuning.h cannot include kernels.h: no CUDA).
static_assert(cuda::CudaTuning{}.partials_max_splits == cuda::kSmallBatchLinearMaxSplits);
static_assert(cuda::CudaTuning{}.gptq_mma_max_rows == cuda::kGptqMmaMaxRows);
static_assert(cuda::CudaTuning{}.gptq_gemm_max_rows == cuda::kGptqGemmMaxRows);

}  // namespace

CudaDevice::~CudaDevice() {
  // Order: graphs, plans and the profiler's events reference the stream and the handle;
  // the members then free the rest (cuda_device_impl.h).
  profiler_.reset();
  DropGraphs();
  plans_.Clear();
  if (stream_) cudaStreamSynchronize(stream_.get());
}

Status CudaDevice::Init() {
  SLUICE_CUDA_RETURN(cudaSetDevice(options_.device_id), "cudaSetDevice");
  cudaStream_t created = nullptr;
  SLUICE_CUDA_RETURN(cudaStreamCreateWithFlags(&created, cudaStreamNonBlocking),
                     "cudaStreamCreate");
  stream_.reset(created);
  cublasLtHandle_t blas = nullptr;
  if (cublasStatus_t s = cublasLtCreate(&blas); s != CUBLAS_STATUS_SUCCESS) {
    return BlasError(s, "cublasLtCreate");
  }
  blas_.reset(blas);
  ASSIGN_OR_RETURN(bool moved, blas_workspace_.Ensure(kBlasWorkspaceBytes));
  (void)moved;
  cudaDeviceProp prop{};
  SLUICE_CUDA_RETURN(cudaGetDeviceProperties(&prop, options_.device_id), "cudaGetDeviceProperties");
  name_ = std::string("cuda:") + std::to_string(options_.device_id) + " (" + prop.name + ")";
  if (tuning_.profile) profiler_ = std::make_unique<cuda::StepProfiler>(stream());
  return Status::Ok();
}

// --- Memory ---

Result<std::unique_ptr<Buffer>> CudaDevice::Allocate(DType dtype, size_t elements) {
  void* ptr = nullptr;
  const size_t bytes = std::max<size_t>(1, elements * DTypeSize(dtype));
  if (cudaError_t e = cudaMalloc(&ptr, bytes); e != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free allocation error
    return CudaError(e, "cudaMalloc of " + std::to_string(bytes) + " bytes on " + name_);
  }
  return std::unique_ptr<Buffer>(new CudaBuffer(dtype, elements, ptr));
}

// Weights of any float dtype become bf16 on the device.
Result<std::unique_ptr<Buffer>> CudaDevice::LoadWeight(DType dtype, const void* host,
                                                       size_t elements,
                                                       std::shared_ptr<const void> /*keep_alive*/) {
  ASSIGN_OR_RETURN(auto out, Allocate(DType::kBF16, elements));
  RETURN_IF_ERROR(weight_upload_.ToBf16(dtype, host, elements, Bf16(*out), stream()));
  return out;
}

// The group's weights back to back in one allocation, so that LinearGroup can run them
// as one product (a decode step's q|k|v or gate|up GEMV).
Result<std::vector<std::unique_ptr<Buffer>>> CudaDevice::LoadWeightGroup(
    std::span<const WeightSource> parts) {
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
    RETURN_IF_ERROR(weight_upload_.ToBf16(p.dtype, p.host, p.elements, dst, stream()));
    out.push_back(std::make_unique<CudaBuffer>(DType::kBF16, p.elements, dst, shared));
    offset += p.elements;
  }
  return out;
}

// GPTQ weights stay quantized (gptq_weights.h). Three scratches serve them all, sized here
// for the largest weight so that no step grows them: the dequantized bf16 weight of a
// product too large for the small-batch kernel and the GEMM (which also stages the
// checkpoint's qweight during the load), the act-order permutation of a decode batch's x
// (up to the GEMM's rows), and the GEMM's fp32 slices.
Result<std::unique_ptr<Buffer>> CudaDevice::LoadGptqWeight(const GptqWeightSource& source) {
  if (source.in < 1 || source.out < 1) return InvalidArgument("GPTQ weight: empty shape");
  const size_t dequant = static_cast<size_t>(source.in) * source.out * sizeof(cuda::bf16);
  ASSIGN_OR_RETURN(bool moved, gptq_dequant_.Ensure(dequant));
  const size_t x_rows = std::max(
      {cuda::kGptqSmallBatchMaxRows, cuda::GptqMmaMaxRows(), cuda::GptqGemmMaxRows()});
  ASSIGN_OR_RETURN(bool moved_x,
                   gptq_x_.Ensure(static_cast<size_t>(source.in) * x_rows * sizeof(cuda::bf16)));
  bool moved_ws = false;
  if (cuda::GptqGemmMaxRows() > 0) {
    ASSIGN_OR_RETURN(moved_ws, gptq_gemm_ws_.Ensure(cuda::GptqGemmWorkspaceBytes()));
    cuda::GptqGemmPrepare();
  }
  bool moved_ahead = false;
  if (tuning_.gptq_dequant_ahead) {
    ASSIGN_OR_RETURN(moved_ahead, gptq_ahead_.Reserve(dequant, gptq_dequant_.ptr, stream()));
  }
  if (moved || moved_x || moved_ws || moved_ahead) DropGraphs();
  ASSIGN_OR_RETURN(auto weight,
                   cuda::LoadGptqCudaWeight(source, gptq_dequant_.ptr, gptq_dequant_.bytes,
                                            gptq_order_, stream()));
  return std::unique_ptr<Buffer>(std::move(weight));
}

// On the step's stream, and waited for. A plain cudaMemcpy would run on the legacy stream,
// which the (non-blocking) step stream does not wait for, and from pageable memory it returns
// once the bytes are staged, before they land: the next kernel could read the old contents, or
// write outputs the copy then overwrites (the GPU tests' rare unwritten outputs, sessions 24-25).
Status CudaDevice::Upload(Buffer& dst, const void* host, size_t bytes) {
  SLUICE_CUDA_RETURN(cudaMemcpyAsync(Ptr<void>(dst), host, bytes, cudaMemcpyHostToDevice, stream()),
                     "upload");
  SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream()), "upload");
  return Status::Ok();
}

Status CudaDevice::Download(const Buffer& src, void* host, size_t bytes) {
  RETURN_IF_ERROR(Sync("step"));
  if (profiler_) profiler_->EndStep();
  SLUICE_CUDA_RETURN(cudaMemcpy(host, Ptr<void>(src), bytes, cudaMemcpyDeviceToHost), "download");
  return Status::Ok();
}

std::optional<DeviceMemory> CudaDevice::memory() const {
  DeviceMemory m;
  if (cudaMemGetInfo(&m.free, &m.total) != cudaSuccess) return std::nullopt;
  return m;
}

// --- Step ---

Status CudaDevice::BeginStep(const StepMetadata& step) {
  weight_upload_.Release(stream());  // weights are all loaded before the first step
  if (!step_error_.ok()) return step_error_;
  const int32_t rows = step.num_rows();
  if (profiler_) profiler_->BeginStep(rows, rows == static_cast<int32_t>(step.seqs.size()));
  Result<bool> moved = step_layout_.Reserve(step);
  if (!moved.ok() || *moved) DropGraphs();
  RETURN_IF_ERROR(moved.status());
  ASSIGN_OR_RETURN(dstep_, step_layout_.Upload(step, stream()));
  return gptq_ahead_.BeginStep(stream());
}

int32_t CudaDevice::GraphBucket(int32_t num_seqs) const {
  if (options_.enforce_eager || num_seqs < 1 || num_seqs > options_.max_graph_batch) return 0;
  if (num_seqs <= 4) return num_seqs == 3 ? 4 : num_seqs;
  return std::min(options_.max_graph_batch, (num_seqs + 7) / 8 * 8);
}

Status CudaDevice::RunStep(int32_t bucket, const std::function<void()>& issue_ops) {
  if (bucket == 0) {
    issue_ops();
    return TakeStepError();
  }
  // A graph step's kernels must size their grids for any context up to the model's
  // length, since the same graph replays every later step of this bucket.
  dstep_.max_context = std::max(dstep_.max_context, options_.max_model_len);
  cudaGraphExec_t graph = graphs_.Find(bucket);
  if (graph == nullptr) {
    if (graphs_.FirstSight(bucket)) {
      // Run eagerly, so that every workspace and cuBLASLt plan exists (and stays) before a
      // capture records their addresses.
      issue_ops();
      return TakeStepError();
    }
    auto issue = [&] {
      capturing_ = true;
      issue_ops();
      capturing_ = false;
    };
    ASSIGN_OR_RETURN(graph,
                     graphs_.Capture(bucket, stream(), issue, [&] { return TakeStepError(); }));
  }
  SLUICE_CUDA_RETURN(cudaGraphLaunch(graph, stream()), "graph launch");
  if (profiler_) profiler_->MarkGraph();
  return Status::Ok();
}

// --- Step errors and profiling ---

// Ops return nothing (ops.h): the first failure of a step is kept and reported by the
// step's RunStep / Download.
void CudaDevice::Fail(Status st) {
  if (step_error_.ok()) step_error_ = std::move(st);
}

Status CudaDevice::TakeStepError() {
  Status st = std::move(step_error_);
  step_error_ = Status::Ok();
  if (!st.ok()) return st;
  SLUICE_CUDA_RETURN(cudaPeekAtLastError(), "kernel launch");
  return Status::Ok();
}

// Times the op just issued when profiling an eager step (step_profiler.h); `out` x `in`
// names a product's shape.
void CudaDevice::Prof(const char* op, int32_t out, int32_t in) {
  if (!profiler_ || capturing_) return;
  profiler_->Op(out == 0 ? std::string(op)
                         : std::string(op) + " " + std::to_string(out) + "x" + std::to_string(in));
}

Status CudaDevice::Sync(std::string_view what) {
  RETURN_IF_ERROR(TakeStepError());
  SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream()), std::string(what));
  SLUICE_CUDA_RETURN(cudaGetLastError(), std::string(what));
  return Status::Ok();
}

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
  const Result<cuda::CudaTuning>& tuning = cuda::ProcessCudaTuning();
  if (!tuning.ok()) return tuning.status();
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
  auto device = std::make_unique<CudaDevice>(options, *tuning);
  RETURN_IF_ERROR(device->Init());
  return std::unique_ptr<Device>(std::move(device));
}

}  // namespace sluice::llm

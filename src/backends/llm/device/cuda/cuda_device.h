#pragma once
// The CUDA device (DESIGN.md §3): bf16 weights, activations and KV cache on one NVIDIA GPU;
// GEMMs through cuBLASLt (bf16 in, fp32 accumulate), every other op one of Sluice's kernels
// (kernels.h). GPTQ Int4 / Int8 weights stay quantized (gptq_weights.h): decode batches
// dequantize in registers (gptq_kernels.h), larger products dequantize a layer into one bf16
// scratch for cuBLASLt. Ops are queued on one stream; Download and Sample are the only waits.
//
// Decode steps replay CUDA graphs captured per batch-size bucket (1, 2, 4, then multiples
// of 8 up to max_graph_batch): a step's metadata is uploaded into fixed device arrays, so a
// graph captured once serves every later step of its bucket. `enforce_eager` turns graphs
// off. Everything the device allocated (graphs, cuBLASLt handle, stream, memory) is released
// by its destructor, before the process exits (the lifecycle contract, DESIGN.md §2).

#include <memory>
#include <string>

#include "backends/llm/device/ops.h"

namespace sluice::llm {

struct CudaDeviceOptions {
  int device_id = 0;             // CUDA ordinal (instance_group.gpus)
  bool enforce_eager = false;    // no CUDA graphs
  int32_t max_graph_batch = 256; // largest decode batch replayed from a graph
  int32_t max_model_len = 0;     // context bound a captured attention grid must cover
};

// FailedPrecondition-like Unavailable when no usable GPU exists (message says why).
Result<std::unique_ptr<Device>> CreateCudaDevice(const CudaDeviceOptions& options);

// The number of CUDA devices this process can use (0 when none or no driver), and why not.
int CudaDeviceCount(std::string* why_none = nullptr);

// The stream a CUDA device issues its ops on (for a collective that must join them), or
// null when `device` is not one.
void* CudaDeviceStream(Device& device);

}  // namespace sluice::llm

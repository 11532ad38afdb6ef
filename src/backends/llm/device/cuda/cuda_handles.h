#pragma once
// Owning handles for the CUDA runtime's and cuBLASLt's objects (STYLE.md §15): each
// destroys its object when it goes, so that no path, error returns included, closes one by
// hand. A null handle owns nothing. The objects' own errors on destruction are ignored, as
// a destructor cannot report them.

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <memory>
#include <type_traits>

namespace sluice::llm::cuda {

struct StreamDeleter {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct EventDeleter {
  void operator()(cudaEvent_t e) const { cudaEventDestroy(e); }
};
struct GraphDeleter {
  void operator()(cudaGraph_t g) const { cudaGraphDestroy(g); }
};
struct GraphExecDeleter {
  void operator()(cudaGraphExec_t g) const { cudaGraphExecDestroy(g); }
};
struct BlasLtDeleter {
  void operator()(cublasLtHandle_t h) const { cublasLtDestroy(h); }
};

using UniqueStream = std::unique_ptr<std::remove_pointer_t<cudaStream_t>, StreamDeleter>;
using UniqueEvent = std::unique_ptr<std::remove_pointer_t<cudaEvent_t>, EventDeleter>;
using UniqueGraph = std::unique_ptr<std::remove_pointer_t<cudaGraph_t>, GraphDeleter>;
using UniqueGraphExec = std::unique_ptr<std::remove_pointer_t<cudaGraphExec_t>, GraphExecDeleter>;
using UniqueBlasLt = std::unique_ptr<std::remove_pointer_t<cublasLtHandle_t>, BlasLtDeleter>;

}  // namespace sluice::llm::cuda

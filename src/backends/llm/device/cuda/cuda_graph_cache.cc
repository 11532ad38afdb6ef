#include "backends/llm/device/cuda/cuda_graph_cache.h"

#include <utility>

#include "backends/llm/device/cuda/cuda_memory.h"

namespace sluice::llm::cuda {

cudaGraphExec_t GraphCache::Find(int32_t bucket) const {
  auto it = graphs_.find(bucket);
  return it == graphs_.end() ? nullptr : it->second.get();
}

Result<cudaGraphExec_t> GraphCache::Capture(int32_t bucket, cudaStream_t stream,
                                            const std::function<void()>& issue,
                                            const std::function<Status()>& issue_status) {
  SLUICE_CUDA_RETURN(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
                     "graph capture");
  issue();
  cudaGraph_t captured = nullptr;
  const cudaError_t e = cudaStreamEndCapture(stream, &captured);
  UniqueGraph graph(captured);
  Status st = issue_status();
  if (e != cudaSuccess || !st.ok()) {
    graph.reset();
    cudaGetLastError();
    if (!st.ok()) return st;
    return CudaError(e, "graph capture");
  }
  cudaGraphExec_t instantiated = nullptr;
  const cudaError_t ie = cudaGraphInstantiate(&instantiated, graph.get(), 0);
  graph.reset();
  SLUICE_CUDA_RETURN(ie, "graph instantiate");
  UniqueGraphExec& slot = graphs_[bucket];
  slot.reset(instantiated);
  return slot.get();
}

}  // namespace sluice::llm::cuda

#pragma once
// The CUDA device's decode graphs: one per batch-size bucket (CudaDevice::GraphBucket),
// captured from the bucket's second step (its first runs eagerly, so that every workspace
// and cuBLASLt plan exists before a capture records their addresses) and replayed by every
// later step of the bucket. A graph records addresses, so whoever moves memory a graph
// reads drops them all (Clear). Owns its graphs (RAII); used from the engine thread only.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>

#include "backends/llm/device/cuda/cuda_handles.h"
#include "common/status.h"

namespace sluice::llm::cuda {

class GraphCache {
 public:
  // The bucket's graph, or null when it has none yet.
  cudaGraphExec_t Find(int32_t bucket) const;
  // True on the bucket's first step (which the caller runs eagerly), false after.
  bool FirstSight(int32_t bucket) { return warmed_.insert(bucket).second; }
  // Captures what `issue` queues on `stream` into the bucket's graph and keeps it.
  // `issue_status` is read after the capture ended: the status of the ops `issue` queued.
  // On an error nothing is kept and the capture's error state is cleared.
  Result<cudaGraphExec_t> Capture(int32_t bucket, cudaStream_t stream,
                                  const std::function<void()>& issue,
                                  const std::function<Status()>& issue_status);
  // Destroys every graph (the buckets stay warm).
  void Clear() { graphs_.clear(); }
  size_t size() const { return graphs_.size(); }

 private:
  std::map<int32_t, UniqueGraphExec> graphs_;
  std::set<int32_t> warmed_;
};

}  // namespace sluice::llm::cuda

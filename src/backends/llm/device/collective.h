#pragma once

// The ranks of a tensor-parallel model (issue 7) and the one collective its forward pass
// needs: an all-reduce (sum) of each row-parallel layer's partial output. On GPUs that is
// NCCL's; LocalCollectiveGroup is the in-process one, for ranks that are threads of one
// process (the CPU tests that check sharding against the unsharded model).

#include <barrier>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "backends/llm/device/ops.h"
#include "common/status.h"

namespace sluice::llm {

class Collective {
 public:
  virtual ~Collective() = default;
  virtual int32_t rank() const = 0;
  virtual int32_t size() const = 0;
  // buf[0, elements) becomes the sum over the ranks of their buf, on every rank. All ranks
  // call it with the same `elements`, in the same order (it is a collective). Issued as an
  // op of the current step, on `device`'s stream.
  virtual Status AllReduceSum(Device& device, Buffer& buf, size_t elements) = 0;
};

// `size` ranks that are threads of one process, each with its own device. A rank's buffer
// goes through host memory; every rank adds the ranks' values in rank order, so all get
// bit-identical sums. fp32 buffers only (the CPU device's activations). A rank that never
// arrives blocks the others: for tests and single-process runs, not for fault isolation.
class LocalCollectiveGroup {
 public:
  explicit LocalCollectiveGroup(int32_t size);
  ~LocalCollectiveGroup();
  LocalCollectiveGroup(const LocalCollectiveGroup&) = delete;
  LocalCollectiveGroup& operator=(const LocalCollectiveGroup&) = delete;

  int32_t size() const { return static_cast<int32_t>(ranks_.size()); }
  Collective& rank(int32_t r);

 private:
  class Rank;
  std::barrier<> barrier_;
  std::vector<std::vector<float>> values_;  // one per rank
  std::vector<std::unique_ptr<Rank>> ranks_;
};

}  // namespace sluice::llm

#pragma once
// The `identity` backend: every input comes back as an output with the same bytes,
// datatype and shape. The output is the config output with the input's name if there is
// one, else the config output at the input's position (Triton's INPUT0 -> OUTPUT0), else
// (no outputs configured) the input's own name. All datatypes, BYTES included. With
// max_batch_size > 0 the first dimension is the batch and may not exceed it.
// Execute answers at once, on the caller's thread, with one final response.

#include "backends/backend.h"

namespace sluice::backends {

class IdentityBackend : public Backend {
 public:
  Status Initialize(const InstanceSpec& context) override;
  void Execute(BackendRequest request) override;
  void Cancel(uint64_t) override {}  // every request ends inside Execute
  void Finalize() override {}

 private:
  Result<InferResponse> Echo(const InferRequest& request) const;
  InstanceSpec context_;  // constant after Initialize
};

}  // namespace sluice::backends

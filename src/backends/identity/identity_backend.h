#pragma once
// The `identity` backend: every input comes back as an output with the same bytes,
// datatype and shape. The output is the config output with the input's name if there is
// one, else the config output at the input's position (Triton's INPUT0 -> OUTPUT0), else
// (no outputs configured) the input's own name. All datatypes, BYTES included. With
// max_batch_size > 0 the first dimension is the batch and may not exceed it.
// Each request gets one final response, from the backend's own thread in arrival order:
// Execute only queues (backend.h: it must not block), so that echoing a tensor of hundreds of
// MB never holds up the stub's IPC thread, which answers the server's heartbeats. Cancel
// ends a request still queued; Finalize ends those still queued and joins the thread.

#include <deque>
#include <thread>

#include "backends/backend.h"
#include "common/thread_annotations.h"

namespace sluice::backends {

class IdentityBackend : public Backend {
 public:
  ~IdentityBackend() override;
  Status Initialize(const InstanceSpec& context) override;
  void Execute(BackendRequest request) override SLUICE_EXCLUDES(mu_);
  void Cancel(uint64_t id) override SLUICE_EXCLUDES(mu_);
  void Finalize() override SLUICE_EXCLUDES(mu_);

 private:
  Result<InferResponse> Echo(const InferRequest& request) const;
  void Run() SLUICE_EXCLUDES(mu_);

  InstanceSpec context_;  // constant after Initialize
  Mutex mu_;
  CondVar cv_;  // queue_ grew, or stop_
  std::deque<BackendRequest> queue_ SLUICE_GUARDED_BY(mu_);
  bool stop_ SLUICE_GUARDED_BY(mu_) = false;
  std::thread worker_;  // started by Initialize, joined by Finalize
};

}  // namespace sluice::backends

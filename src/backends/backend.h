#pragma once
// The backend interface: what runs inside a sluice-stub process (DESIGN.md §1). Backends
// depend on this header alone, never on the stub; the stub (stub/backend_registry.h) depends on
// the backends. Built-in backends: identity, repeat (decoupled test workhorse), llm (the engine).
//
// Life of a backend: Create -> Initialize (once) -> Execute/Cancel (any number, from the
// stub's IPC thread) -> Finalize (once, at shutdown, after which no method is called).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/inference.h"
#include "common/instance_spec.h"
#include "common/metric_family.h"
#include "common/status.h"

namespace sluice::backends {

// Sends the responses of one request back to the server. Thread-safe; may outlive the
// Execute call and be used from any thread. The first call with final=true (or SendError)
// ends the request; later calls return an error and send nothing.
// If the last reference is dropped before a final response, the stub sends the final event
// itself (an INTERNAL error naming the backend), so a backend bug cannot pin the request.
class ResponseSender {
 public:
  virtual ~ResponseSender() = default;
  virtual Status Send(InferResponse response, bool final) = 0;
  // Ends the request with no further response (Triton's "final flag only").
  virtual Status SendFinal() = 0;
  // Ends the request with an error (always final).
  virtual Status SendError(Status error) = 0;
  // True once the server asked to cancel this request.
  virtual bool IsCancelled() const = 0;
  // The request left the backend's queue and runs now: ends its queue time and its count as
  // pending (Triton's nv_inference_queue_duration_us, nv_inference_pending_request_count).
  // Only the first call sends anything; a request that ends without one is taken as started
  // when it ends. The stub calls it before Execute for a backend that does not
  // ReportsRequestStart().
  virtual void ReportStarted() {}
};

struct BackendRequest {
  uint64_t id = 0;  // unique within the stub; what Cancel names
  InferRequest request;
  std::shared_ptr<ResponseSender> sender;  // shared: backends hand it to their own threads
};

class Backend {
 public:
  virtual ~Backend() = default;
  // `instance` (common/instance_spec.h): the model, its folders, the device; the same struct the
  // server built for this instance.
  virtual Status Initialize(const InstanceSpec& instance) = 0;
  // Takes ownership of the request. Must not block for long: a backend that computes
  // for long does so on its own thread(s) and responds through the sender.
  virtual void Execute(BackendRequest request) = 0;
  // The server asked to cancel request `id` (client cancel, disconnect, unload past grace).
  // The backend should end it promptly with SendError(Cancelled(...)). Unknown ids are ignored.
  virtual void Cancel(uint64_t id) = 0;
  // Releases everything (threads joined, device memory freed). No call follows.
  virtual void Finalize() = 0;
  // Whether the backend calls ResponseSender::ReportStarted itself when a request leaves
  // its own queue (the llm engine, when it first schedules it). If false, the stub reports
  // every request started as it hands it to Execute.
  virtual bool ReportsRequestStart() const { return false; }
  // The backend's metric families for the server's /metrics (the llm backend's vllm:*
  // series), sent with each heartbeat; the server merges them with every other instance's
  // and renders each family once. Thread-safe.
  virtual std::vector<MetricFamily> Metrics() const { return {}; }
};

}  // namespace sluice::backends

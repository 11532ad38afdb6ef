#pragma once
// Settings of the gRPC frontend (GrpcServer and the handlers it serves).

#include <chrono>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/access_policy.h"
#include "common/version.h"
#include "core/inference_service.h"

namespace sluice::grpc_frontend {

struct GrpcServerOptions {
  // Reported by ServerMetadata.
  std::string server_name = "sluice";
  std::string server_version = std::string(SluiceVersion());
  std::vector<std::string> extensions = core::ServerExtensions();

  // Largest request or response message, bytes (bounds every tensor a client can send).
  int max_message_bytes = 64 << 20;
  // Threads and queue for the blocking RPCs (RepositoryModelLoad / Unload).
  size_t blocking_threads = 4;
  size_t max_queued_blocking = 256;
  // Per ModelStreamInfer stream: requests in flight at once (more are refused with an
  // error response), and responses waiting for a slow client (more ends the stream with
  // RESOURCE_EXHAUSTED and cancels its requests).
  size_t max_inflight_per_stream = 1024;
  size_t max_pending_writes_per_stream = 8192;
  // HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS):
  // bounds a client that opens streams and keeps them. Streams the client resets free their
  // slot at once (HTTP/2 rapid reset, CVE-2023-44487), which Debian's gRPC 1.51 does not
  // detect: see README "Security".
  uint32_t max_concurrent_streams = 1024;
  // Stop(): in-flight RPCs may finish for this long, then they are cancelled.
  std::chrono::milliseconds shutdown_grace{5000};
  // Serve grpc.health.v1 (overall status SERVING while started).
  bool enable_health_service = true;
  // Who may call which RPC (API key, restricted categories; grpc_access.h). Null: anyone.
  // When it refuses a health call without metadata, grpc.health.v1 is not served either
  // (gRPC's built-in health service cannot check metadata).
  std::shared_ptr<const AccessPolicy> access;
};

}  // namespace sluice::grpc_frontend

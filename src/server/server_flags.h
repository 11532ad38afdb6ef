#pragma once
// Command-line flags of `sluice`, with Triton's spellings where Triton has the flag.

#include <string>
#include <vector>

#include "common/status.h"
#include "core/server.h"

namespace sluice::server {

struct Flags {
  core::ServerOptions core;
  std::string http_address = "127.0.0.1";
  // Triton's --grpc-address / --metrics-address; empty: --http-address (so one flag opens
  // every port to the network, and none opens any: Sluice listens on loopback by default).
  std::string grpc_address;
  std::string metrics_address;
  int http_port = 8000;
  int grpc_port = 8001;
  int metrics_port = 8002;
  bool allow_http = true;
  bool allow_grpc = true;
  bool allow_metrics = true;
  int http_threads = 4;
  int exit_timeout_secs = 30;
  int log_verbose = 0;
  // HTTP limits.
  size_t http_max_body_bytes = 64u << 20;
  size_t http_max_header_bytes = 16u << 10;
  size_t http_max_connections = 4096;
  int http_read_timeout_secs = 60;
  int listener_check_interval_ms = 5000;
  int grpc_max_concurrent_streams = 1024;
  int grpc_memory_quota_mb = 1024;  // 0: liveness does not probe the listeners
  int max_json_depth = 64;
  // Access control (README "Security"). The key comes from --api-key, else the environment
  // (SLUICE_API_KEY, then vLLM's VLLM_API_KEY); it is never logged.
  std::string api_key;
  bool api_key_exclude_health = true;  // health routes / RPCs need no key (k8s probes)
  std::vector<std::string> http_restricted_api;       // Triton's "<api1>,<api2>:<key>=<value>"
  std::vector<std::string> grpc_restricted_protocol;  // same syntax, for gRPC
  std::string allowed_origins;                        // JSON list or comma list; empty: none
};

// Parses argv. On --help, prints the help and returns a status with code kOk... callers
// check `exit_code`: -1 = run, otherwise exit with it.
struct ParsedFlags {
  Flags flags;
  int exit_code = -1;
};
ParsedFlags ParseFlags(int argc, char** argv);

// The default model repository: examples/ next to the source tree this binary was built
// from, or share/sluice/examples next to an installed binary.
std::string DefaultRepository();

}  // namespace sluice::server

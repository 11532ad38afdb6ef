#include "server/server_flags.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/version.h"

#ifndef SLUICE_DEFAULT_REPOSITORY
#define SLUICE_DEFAULT_REPOSITORY ""
#endif

namespace sluice::server {
namespace fs = std::filesystem;

std::string DefaultRepository() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "sluice" / "examples";
    if (fs::is_directory(installed, ec)) return installed.string();
  }
  return SLUICE_DEFAULT_REPOSITORY;
}

// The stub beside the server (the build tree's layout, or both in one bin/), in the build
// tree's src/stub/, or where the package installs it: <prefix>/lib/sluice/sluice-stub for
// <prefix>/bin/sluice.
static std::string StubPathNextTo() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "sluice-stub";
  for (fs::path candidate :
       {exe.parent_path() / "sluice-stub", exe.parent_path().parent_path() / "stub" / "sluice-stub",
        exe.parent_path().parent_path() / "lib" / "sluice" / "sluice-stub"}) {
    if (fs::exists(candidate, ec)) return candidate.string();
  }
  return (exe.parent_path() / "sluice-stub").string();
}

namespace {

// What the command line gives in another form than Flags keeps (names, seconds as ints).
struct RawFlags {
  std::string mode = "none";
  int grace = 10, kill = 5, load_timeout = 600, heartbeat_ms = 5000;
  int restart_backoff_ms = 1000, restart_backoff_max_ms = 30000;
};

void AddRepositoryOptions(CLI::App& app, Flags& f, RawFlags& r) {
  app.add_option("--model-repository,--model-store", f.core.repositories,
                 "Model repository path (repeatable). Default: the bundled examples/ repository.");
  app.add_option("--model-control-mode", r.mode, "none | explicit | poll (as Triton)")
      ->check(CLI::IsMember({"none", "explicit", "poll"}));
  app.add_option("--load-model", f.core.startup_models,
                 "Model to load at start in explicit mode (repeatable; '*' alone loads all)");
  app.add_option("--repository-poll-secs", f.core.poll_secs,
                 "Seconds between repository polls in poll mode")
      ->check(CLI::Range(1, 86400));
}

void AddNetworkOptions(CLI::App& app, Flags& f) {
  app.add_option(
      "--http-address", f.http_address,
      "Address for HTTP, and for gRPC and metrics unless given their own (default 127.0.0.1: "
      "loopback only; 0.0.0.0 for all)");
  app.add_option("--grpc-address", f.grpc_address, "Address for gRPC (default: --http-address)");
  app.add_option("--metrics-address", f.metrics_address,
                 "Address for Prometheus metrics (default: --http-address)");
  app.add_option("--http-port", f.http_port, "HTTP port (KServe v2, generate, OpenAI)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--grpc-port", f.grpc_port, "gRPC port (inference.GRPCInferenceService)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--metrics-port", f.metrics_port, "Prometheus metrics port")
      ->check(CLI::Range(0, 65535));
  app.add_option("--allow-http", f.allow_http, "Serve HTTP");
  app.add_option("--allow-grpc", f.allow_grpc, "Serve gRPC");
  app.add_option("--allow-metrics", f.allow_metrics, "Serve metrics");
  app.add_option("--http-thread-count", f.http_threads, "HTTP I/O threads")
      ->check(CLI::Range(1, 256));
}

// Unload, load, heartbeats, restarts and instances: the model lifecycle's bounds.
void AddLifecycleOptions(CLI::App& app, Flags& f, RawFlags& r) {
  app.add_option("--exit-timeout-secs", f.exit_timeout_secs,
                 "On SIGINT/SIGTERM, seconds to let in-flight requests drain before unloading")
      ->check(CLI::Range(0, 3600));
  app.add_option("--model-load-thread-count", f.core.model_load_threads,
                 "Models loaded in parallel at start")
      ->check(CLI::Range(1, 256));
  app.add_option("--log-verbose", f.log_verbose, "Verbose logging level (0 = off)")
      ->check(CLI::Range(0, 10));
  app.add_option("--model-unload-grace-secs", r.grace,
                 "Unload: seconds in-flight requests (streams included) may take to finish before "
                 "they are cancelled")
      ->check(CLI::Range(0, 3600));
  app.add_option("--model-kill-timeout-secs", r.kill,
                 "Unload: seconds after the grace period before a stub is killed (shutdown, "
                 "SIGTERM, then SIGKILL)")
      ->check(CLI::Range(1, 3600));
  app.add_option("--model-load-timeout-secs", r.load_timeout,
                 "Seconds a model instance may take to initialize")
      ->check(CLI::Range(1, 86400));
  app.add_option("--stub-heartbeat-timeout-ms", r.heartbeat_ms,
                 "A stub that does not answer heartbeats this long is killed and its model made "
                 "UNAVAILABLE")
      ->check(CLI::Range(100, 600000));
  app.add_option(
         "--model-restart-max", f.core.version.restart.max_restarts,
         "A crashed or hung stub is restarted with backoff up to this many times in a row "
         "(a run of 60 s resets the count); then its model stays UNAVAILABLE. 0: never restart")
      ->check(CLI::Range(0, 1000));
  app.add_option(
         "--model-restart-backoff-ms", r.restart_backoff_ms,
         "Wait before the first restart of a crashed stub; doubled for each restart in a row")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--model-restart-backoff-max-ms", r.restart_backoff_max_ms,
                 "Longest wait between restarts of a crashed stub")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--model-instance-count-max", f.core.version.max_instances,
                 "Most instances (sluice-stub processes) one model version may start; a config "
                 "asking for more fails to load")
      ->check(CLI::Range(1, 1024));
  app.add_flag("--allow-test-behaviors", f.core.allow_test_behaviors,
               "Let load requests' config overrides set the test behaviours (ignore_shutdown, "
               "hang_in_finalize, crash_after_responses, gpu_hold_mib): for lifecycle tests only");
  app.add_option("--cpu-threads", f.core.version.cpu_threads,
                 "Threads per CPU model instance (0 = all cores)")
      ->check(CLI::Range(0, 1024));
  app.add_option("--stub-path", f.core.version.stub_path,
                 "Path of the sluice-stub binary (default: next to sluice, or <prefix>/lib/sluice/ "
                 "for <prefix>/bin/sluice)");
}

void AddLimitOptions(CLI::App& app, Flags& f) {
  app.add_option("--http-max-body-bytes", f.http_max_body_bytes,
                 "Largest HTTP request body (chunked too)");
  app.add_option("--http-max-header-bytes", f.http_max_header_bytes, "Largest HTTP request header");
  app.add_option("--http-max-connections", f.http_max_connections,
                 "Open HTTP connections at most (more are closed at once); lowered to fit the "
                 "descriptor limit")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--grpc-max-concurrent-streams", f.grpc_max_concurrent_streams,
                 "HTTP/2 streams one gRPC connection may have open at once")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option(
         "--listener-check-interval-ms", f.listener_check_interval_ms,
         "How often each listener (HTTP, gRPC, metrics) is probed over a new loopback connection; "
         "three failed probes in a row make /v2/health/live and ServerLive answer not live (0: "
         "never)")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--http-read-timeout-secs", f.http_read_timeout_secs,
                 "Seconds to read one HTTP request")
      ->check(CLI::Range(1, 3600));
  app.add_option("--max-json-depth", f.max_json_depth, "Deepest JSON nesting accepted")
      ->check(CLI::Range(2, 10000));
  app.add_option("--max-tensor-rank", f.core.limits.max_tensor_rank, "Largest tensor rank accepted")
      ->check(CLI::Range(1, 64));
  app.add_option("--max-tensor-elements", f.core.limits.max_tensor_elements,
                 "Most elements in one tensor")
      ->check(CLI::Range(int64_t{1}, INT64_MAX));
}

void AddSecurityOptions(CLI::App& app, Flags& f) {
  app.add_option(
      "--api-key", f.api_key,
      "Require 'Authorization: Bearer <key>' on every HTTP route (OpenAI, KServe, generate, "
      "repository, logging, statistics) and gRPC metadata 'authorization: Bearer <key>' on every "
      "RPC. Default: $SLUICE_API_KEY, else $VLLM_API_KEY, else none");
  app.add_option("--api-key-exclude-health", f.api_key_exclude_health,
                 "Leave health routes and RPCs (live, ready, model ready, grpc.health.v1) open "
                 "without the API "
                 "key, for probes; false requires the key there too (and disables grpc.health.v1)");
  app.add_option("--http-restricted-api", f.http_restricted_api,
                 "Triton's '<api1>,<api2>:<key>=<value>' (repeatable): these HTTP API categories "
                 "(model-repository, model-config, shared-memory, statistics, trace, logging, "
                 "health, metadata, "
                 "inference) need header '<key>: <value>', else 403");
  app.add_option("--grpc-restricted-protocol", f.grpc_restricted_protocol,
                 "As --http-restricted-api, for gRPC metadata (PERMISSION_DENIED otherwise)");
  app.add_option(
      "--allowed-origins", f.allowed_origins,
      "Browser origins allowed to call the server (CORS on /v1/*), as a JSON list or a comma list; "
      "'*' for any. Default none: a request other than GET carrying an Origin header is refused");
}

// The parsed values into Flags' forms, and the defaults that depend on other flags or the
// environment.
void Finish(Flags& f, const RawFlags& r) {
  f.core.control_mode = r.mode == "explicit" ? core::ModelControlMode::kExplicit
                        : r.mode == "poll"   ? core::ModelControlMode::kPoll
                                             : core::ModelControlMode::kNone;
  if (f.core.repositories.empty()) f.core.repositories.push_back(DefaultRepository());
  if (f.grpc_address.empty()) f.grpc_address = f.http_address;
  if (f.metrics_address.empty()) f.metrics_address = f.http_address;
  if (f.api_key.empty()) {
    for (const char* name : {"SLUICE_API_KEY", "VLLM_API_KEY"}) {
      const char* value = std::getenv(name);
      if (value != nullptr && *value != '\0') {
        f.api_key = value;
        break;
      }
    }
  }
  f.core.version.unload_grace = std::chrono::seconds(r.grace);
  f.core.version.kill_timeout = std::chrono::seconds(r.kill);
  f.core.version.load_timeout = std::chrono::seconds(r.load_timeout);
  f.core.version.heartbeat_timeout = std::chrono::milliseconds(r.heartbeat_ms);
  f.core.version.heartbeat_interval = std::chrono::milliseconds(std::max(50, r.heartbeat_ms / 10));
  f.core.version.verbose_log = f.log_verbose > 0;
  f.core.version.restart.backoff_initial = std::chrono::milliseconds(r.restart_backoff_ms);
  f.core.version.restart.backoff_max =
      std::chrono::milliseconds(std::max(r.restart_backoff_ms, r.restart_backoff_max_ms));
  if (f.core.version.stub_path.empty()) f.core.version.stub_path = StubPathNextTo();
}

}  // namespace

ParsedFlags ParseFlags(int argc, char** argv) {
  ParsedFlags parsed;
  Flags& f = parsed.flags;
  CLI::App app{
      "sluice: an LLM inference server (Triton- and OpenAI-compatible) whose model "
      "lifecycle is bounded: every instance runs in its own sluice-stub process."};
  app.option_defaults()->always_capture_default();
  RawFlags r;
  AddRepositoryOptions(app, f, r);
  app.set_version_flag("--version", "sluice " + std::string(SluiceVersion()));
  AddNetworkOptions(app, f);
  AddLifecycleOptions(app, f, r);
  AddLimitOptions(app, f);
  AddSecurityOptions(app, f);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    parsed.exit_code = app.exit(e);
    return parsed;
  }
  Finish(f, r);
  return parsed;
}

}  // namespace sluice::server

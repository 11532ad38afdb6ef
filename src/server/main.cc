// sluice: the server process. Parses flags, builds the core (repository, lifecycle,
// routing), starts the HTTP, gRPC and metrics frontends, and on SIGINT/SIGTERM shuts down
// in this order: stop accepting (frontends refuse new work), drain in-flight requests
// within --exit-timeout-secs, unload every model (bounded per model), stop the frontends,
// exit 0 with no child process left.

#include <signal.h>
#include <unistd.h>
#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <csignal>

#include "common/access_policy.h"
#include "common/log_settings.h"
#include "common/nvml.h"
#include "common/version.h"
#include "core/model_table.h"
#include "core/server.h"
#include "frontend/grpc/grpc_server.h"
#include "frontend/http/access_guard.h"
#include "frontend/http/http_server.h"
#include "frontend/http/kserve_routes.h"
#include "frontend/http/metrics_route.h"
#include "frontend/metrics/metrics_renderer.h"
#include "frontend/metrics/nvml_gpu_source.h"
#include "frontend/openai/openai_routes.h"
#include "server/listener_watch.h"
#include "server/server_flags.h"

namespace sluice::server {
namespace {

// Blocks SIGINT/SIGTERM in every thread (so that they are only ever received here) and
// waits for one.
// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
size_t RaiseDescriptorLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(lim.rlim_cur);
}

const char* ControlModeName(core::ModelControlMode mode) {
  switch (mode) {
    case core::ModelControlMode::kNone:
      return "none";
    case core::ModelControlMode::kExplicit:
      return "explicit";
    case core::ModelControlMode::kPoll:
      return "poll";
  }
  return "?";
}

int WaitForTerminationSignal(const sigset_t& set) {
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

int Run(int argc, char** argv) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by every thread started below
  signal(SIGPIPE, SIG_IGN);

  ParsedFlags parsed = ParseFlags(argc, argv);
  if (parsed.exit_code >= 0) return parsed.exit_code;
  const Flags& flags = parsed.flags;
  LogSettings log;
  log.log_verbose_level = flags.log_verbose;
  SetLogSettings(log);

  // Access control, checked before any model loads: one API key for every frontend,
  // restrictions per frontend. The key is never logged.
  auto access_options = [&flags](const std::vector<std::string>& specs, const char* flag) -> Result<AccessPolicyOptions> {
    AccessPolicyOptions options;
    options.api_key = flags.api_key;
    options.api_key_exempt_health = flags.api_key_exclude_health;
    for (const std::string& spec : specs) {
      auto restriction = ParseApiRestriction(spec);
      if (!restriction.ok()) return restriction.status().WithPrefix(flag);
      options.restrictions.push_back(std::move(restriction).value());
    }
    return options;
  };
  http::HttpAccessOptions http_access;
  {
    auto policy = access_options(flags.http_restricted_api, "--http-restricted-api");
    auto origins = http::ParseAllowedOrigins(flags.allowed_origins);
    if (!policy.ok() || !origins.ok()) {
      spdlog::error("{}", !policy.ok() ? policy.status().message() : origins.status().message());
      return 1;
    }
    http_access.policy = std::move(policy).value();
    http_access.allowed_origins = std::move(origins).value();
  }
  auto http_guard = http::HttpAccessGuard::Create(http_access);
  std::shared_ptr<const AccessPolicy> grpc_access;
  {
    auto options = access_options(flags.grpc_restricted_protocol, "--grpc-restricted-protocol");
    auto policy = options.ok() ? AccessPolicy::Create(std::move(options).value())
                               : Result<std::unique_ptr<AccessPolicy>>(options.status());
    if (!http_guard.ok() || !policy.ok()) {
      spdlog::error("{}", !http_guard.ok() ? http_guard.status().message() : policy.status().message());
      return 1;
    }
    grpc_access = std::move(policy).value();
  }
  if (!flags.api_key.empty())
    spdlog::info("API key required on HTTP and gRPC{} (metrics port open)",
                 flags.api_key_exclude_health ? ", except health routes" : "");

  std::string repositories;
  for (const std::string& r : flags.core.repositories) repositories += (repositories.empty() ? "" : ", ") + r;
  spdlog::info("sluice {} starting (pid {}): model repository {}, model control mode {}", SluiceVersion(), getpid(),
               repositories, ControlModeName(flags.core.control_mode));
  auto created = core::Server::Create(flags.core);
  if (!created.ok()) {
    spdlog::error("{}", created.status().message());
    return 1;
  }
  std::unique_ptr<core::Server> server = std::move(created).value();
  // Triton's table of the models after the initial loads.
  spdlog::info("\n{}", core::FormatModelTable(server->RepositoryIndex(/*ready_only=*/false)));

  // Descriptors: the soft limit raised to the hard one (Debian's default soft limit, 1024, is
  // a few hundred clients), and HTTP connections capped to fit in what is left beside gRPC,
  // the stubs' links and the model files, so idle HTTP clients cannot starve the gRPC
  // listener (whose accept loop, in grpc 1.51, stops for good after an EMFILE).
  const size_t max_fds = RaiseDescriptorLimit();
  const size_t http_max_connections =
      std::min(flags.http_max_connections, std::max<size_t>(16, max_fds > 512 ? (max_fds - 256) / 2 : max_fds / 4));
  if (http_max_connections < flags.http_max_connections)
    spdlog::warn("descriptor limit {}: at most {} HTTP connections (--http-max-connections {})", max_fds,
                 http_max_connections, flags.http_max_connections);

  http::RequestLimits limits;
  limits.max_json_depth = flags.max_json_depth;
  limits.max_decoded_body_bytes = flags.http_max_body_bytes;
  limits.max_tensor_rank = flags.core.limits.max_tensor_rank;
  limits.max_tensor_elements = flags.core.limits.max_tensor_elements;

  std::unique_ptr<nvml::Nvml> nvml = nvml::Nvml::Load();
  std::unique_ptr<metrics::GpuMemorySource> gpus = metrics::NvmlGpuSource::From(nvml.get());
  const metrics::MetricsRenderer renderer(*server, gpus.get());
  auto render_metrics = [&renderer] { return renderer.Render(); };  // outlives both servers

  // Liveness covers the listeners (listener_watch.h): set before any of them serves.
  std::atomic<const ListenerWatch*> listener_watch{nullptr};
  server->SetLivenessCheck([&listener_watch] {
    const ListenerWatch* watch = listener_watch.load();
    return watch == nullptr || watch->Alive();
  });

  std::unique_ptr<http::HttpServer> http_server;
  if (flags.allow_http) {
    http::Router router;
    RegisterKServeRoutes(router, *server, limits);
    openai::RegisterOpenAIRoutes(router, *server, limits);
    if (flags.allow_metrics) http::RegisterMetricsRoute(router, render_metrics);  // as vLLM
    router.SetAccessGuard(*http_guard);
    http::HttpServerOptions options;
    options.address = flags.http_address;
    options.port = static_cast<uint16_t>(flags.http_port);
    options.io_threads = flags.http_threads;
    options.max_body_bytes = flags.http_max_body_bytes;
    options.max_header_bytes = static_cast<uint32_t>(flags.http_max_header_bytes);
    options.read_timeout = std::chrono::seconds(flags.http_read_timeout_secs);
    options.max_connections = http_max_connections;
    auto s = http::HttpServer::Create(options, std::move(router));
    if (!s.ok() || !(*s)->Start().ok()) {
      spdlog::error("failed to start the HTTP service on {}:{}: {}", flags.http_address, flags.http_port,
                    s.ok() ? "start failed" : s.status().message());
      return 1;
    }
    http_server = std::move(s).value();
    spdlog::info("Started HTTPService at {}:{}", flags.http_address, http_server->port());
  }

  std::unique_ptr<grpc_frontend::GrpcServer> grpc_server;
  if (flags.allow_grpc) {
    grpc_frontend::GrpcServerOptions grpc_options;
    grpc_options.access = grpc_access;
    grpc_options.max_concurrent_streams = static_cast<uint32_t>(flags.grpc_max_concurrent_streams);
    // An IPv6 address goes in brackets ("[::1]:8001"), as gRPC's target syntax wants.
    const bool ipv6 = flags.grpc_address.find(':') != std::string::npos && flags.grpc_address.front() != '[';
    const std::string grpc_host = ipv6 ? "[" + flags.grpc_address + "]" : flags.grpc_address;
    auto s = grpc_frontend::GrpcServer::Create(grpc_host + ":" + std::to_string(flags.grpc_port), *server,
                                               std::move(grpc_options));
    Status started = s.ok() ? (*s)->Start() : s.status();
    if (!started.ok()) {
      spdlog::error("failed to start the gRPC service: {}", started.message());
      return 1;
    }
    grpc_server = std::move(s).value();
    spdlog::info("Started GRPCInferenceService at {}:{}", flags.grpc_address, grpc_server->port());
  }

  std::unique_ptr<http::HttpServer> metrics_server;
  if (flags.allow_metrics) {
    http::Router router;  // no access guard: scrapers send no key (README "Security")
    http::RegisterMetricsRoute(router, render_metrics);
    http::HttpServerOptions options;
    options.address = flags.metrics_address;
    options.port = static_cast<uint16_t>(flags.metrics_port);
    options.io_threads = 1;
    options.max_connections = 64;  // scrapers
    auto s = http::HttpServer::Create(options, std::move(router));
    if (!s.ok() || !(*s)->Start().ok()) {
      spdlog::error("failed to start the metrics service on {}:{}", flags.metrics_address, flags.metrics_port);
      return 1;
    }
    metrics_server = std::move(s).value();
    spdlog::info("Started Metrics Service at {}:{}", flags.metrics_address, metrics_server->port());
  }

  auto listener = [](bool on, const std::string& address, const auto& service) {
    return on && service ? address + ":" + std::to_string(service->port()) : std::string("off");
  };
  spdlog::info("sluice {} serving: HTTP {}, gRPC {}, metrics {}", SluiceVersion(),
               listener(flags.allow_http, flags.http_address, http_server),
               listener(flags.allow_grpc, flags.grpc_address, grpc_server),
               listener(flags.allow_metrics, flags.metrics_address, metrics_server));

  std::unique_ptr<ListenerWatch> watch;
  if (flags.listener_check_interval_ms > 0) {
    std::vector<WatchedListener> watched;
    using Kind = WatchedListener::Kind;
    if (http_server) watched.push_back({"HTTP", Kind::kHttp, flags.http_address, http_server->port(), "/v2/health/live"});
    if (grpc_server) watched.push_back({"gRPC", Kind::kGrpc, flags.grpc_address,
                                          static_cast<uint16_t>(grpc_server->port()), ""});
    if (metrics_server)
      watched.push_back({"metrics", Kind::kHttp, flags.metrics_address, metrics_server->port(), "/metrics"});
    ListenerWatchOptions watch_options;
    watch_options.period = std::chrono::milliseconds(flags.listener_check_interval_ms);
    watch = std::make_unique<ListenerWatch>(std::move(watched), watch_options);
    listener_watch.store(watch.get());
  }

  const int sig = WaitForTerminationSignal(signals);
  spdlog::info("received {}, shutting down (exit timeout {}s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
               flags.exit_timeout_secs);
  // A second signal during shutdown takes its default action (the process ends; stubs
  // follow through PR_SET_PDEATHSIG): only this thread unblocks them.
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);

  listener_watch.store(nullptr);
  watch.reset();  // before the listeners it probes stop
  server->Shutdown(std::chrono::seconds(flags.exit_timeout_secs));
  if (grpc_server) grpc_server->Stop();
  if (http_server) http_server->Stop();
  if (metrics_server) metrics_server->Stop();
  server.reset();
  spdlog::info("sluice exited cleanly");
  return 0;
}

}  // namespace
}  // namespace sluice::server

int main(int argc, char** argv) { return sluice::server::Run(argc, argv); }

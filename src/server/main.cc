// sluice: the server process. Parses flags, builds the core (repository, lifecycle,
// routing), starts the HTTP, gRPC and metrics frontends, and on SIGINT/SIGTERM shuts down
// in this order: stop accepting (frontends refuse new work), drain in-flight requests
// within --exit-timeout-secs, unload every model (bounded per model), stop the frontends,
// exit 0 with no child process left.

#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
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

// What the HTTP and gRPC frontends check on every request: one API key for every frontend,
// restrictions per frontend. The key is never logged.
struct FrontendAccess {
  std::shared_ptr<const http::HttpAccessGuard> http;
  std::shared_ptr<const AccessPolicy> grpc;
};

Result<AccessPolicyOptions> AccessOptions(const Flags& flags, const std::vector<std::string>& specs,
                                          const char* flag) {
  AccessPolicyOptions options;
  options.api_key = flags.api_key;
  options.api_key_exempt_health = flags.api_key_exclude_health;
  for (const std::string& spec : specs) {
    auto restriction = ParseApiRestriction(spec);
    if (!restriction.ok()) return restriction.status().WithPrefix(flag);
    options.restrictions.push_back(std::move(restriction).value());
  }
  return options;
}

Result<FrontendAccess> BuildFrontendAccess(const Flags& flags) {
  http::HttpAccessOptions http_access;
  ASSIGN_OR_RETURN(http_access.policy,
                   AccessOptions(flags, flags.http_restricted_api, "--http-restricted-api"));
  ASSIGN_OR_RETURN(http_access.allowed_origins, http::ParseAllowedOrigins(flags.allowed_origins));
  FrontendAccess access;
  ASSIGN_OR_RETURN(access.http, http::HttpAccessGuard::Create(std::move(http_access)));
  ASSIGN_OR_RETURN(
      AccessPolicyOptions grpc_options,
      AccessOptions(flags, flags.grpc_restricted_protocol, "--grpc-restricted-protocol"));
  ASSIGN_OR_RETURN(access.grpc, AccessPolicy::Create(std::move(grpc_options)));
  return access;
}

// Descriptors: the soft limit raised to the hard one (Debian's default soft limit, 1024, is
// a few hundred clients), and HTTP connections capped to fit in what is left beside gRPC,
// the stubs' links and the model files, so idle HTTP clients cannot starve the gRPC
// listener (whose accept loop, in grpc 1.51, stops for good after an EMFILE). Returns that cap.
size_t RaiseDescriptorsForHttp(const Flags& flags) {
  const size_t max_fds = RaiseDescriptorLimit();
  const size_t http_max_connections =
      std::min(flags.http_max_connections,
               std::max<size_t>(16, max_fds > 512 ? (max_fds - 256) / 2 : max_fds / 4));
  if (http_max_connections < flags.http_max_connections)
    spdlog::warn("descriptor limit {}: at most {} HTTP connections (--http-max-connections {})",
                 max_fds, http_max_connections, flags.http_max_connections);
  return http_max_connections;
}

http::RequestLimits RequestLimitsOf(const Flags& flags) {
  http::RequestLimits limits;
  limits.max_json_depth = flags.max_json_depth;
  limits.max_decoded_body_bytes = flags.http_max_body_bytes;
  limits.max_tensor_rank = flags.core.limits.max_tensor_rank;
  limits.max_tensor_elements = flags.core.limits.max_tensor_elements;
  return limits;
}

// The HTTP service: KServe, generate, OpenAI and (unless --allow-metrics false) /metrics.
Result<std::unique_ptr<http::HttpServer>> StartHttp(const Flags& flags, core::Server& server,
                                                    const FrontendAccess& access,
                                                    std::function<std::string()> render_metrics,
                                                    size_t max_connections) {
  const http::RequestLimits limits = RequestLimitsOf(flags);
  http::Router router;
  RegisterKServeRoutes(router, server, limits);
  openai::RegisterOpenAIRoutes(router, server, limits);
  if (flags.allow_metrics)
    http::RegisterMetricsRoute(router, std::move(render_metrics));  // as vLLM
  router.SetAccessGuard(access.http);
  http::HttpServerOptions options;
  options.address = flags.http_address;
  options.port = static_cast<uint16_t>(flags.http_port);
  options.io_threads = flags.http_threads;
  options.max_body_bytes = flags.http_max_body_bytes;
  options.max_header_bytes = static_cast<uint32_t>(flags.http_max_header_bytes);
  options.read_timeout = std::chrono::seconds(flags.http_read_timeout_secs);
  options.max_connections = max_connections;
  auto s = http::HttpServer::Create(options, std::move(router));
  if (!s.ok() || !(*s)->Start().ok()) {
    return Unavailable(fmt::format("failed to start the HTTP service on {}:{}: {}",
                                   flags.http_address, flags.http_port,
                                   s.ok() ? "start failed" : s.status().message()));
  }
  spdlog::info("Started HTTPService at {}:{}", flags.http_address, (*s)->port());
  return std::move(s).value();
}

Result<std::unique_ptr<grpc_frontend::GrpcServer>> StartGrpc(const Flags& flags,
                                                             core::Server& server,
                                                             const FrontendAccess& access) {
  grpc_frontend::GrpcServerOptions grpc_options;
  grpc_options.access = access.grpc;
  grpc_options.max_concurrent_streams = static_cast<uint32_t>(flags.grpc_max_concurrent_streams);
  // An IPv6 address goes in brackets ("[::1]:8001"), as gRPC's target syntax wants.
  const bool ipv6 =
      flags.grpc_address.find(':') != std::string::npos && flags.grpc_address.front() != '[';
  const std::string grpc_host = ipv6 ? "[" + flags.grpc_address + "]" : flags.grpc_address;
  auto s = grpc_frontend::GrpcServer::Create(grpc_host + ":" + std::to_string(flags.grpc_port),
                                             server, std::move(grpc_options));
  Status started = s.ok() ? (*s)->Start() : s.status();
  if (!started.ok()) return Unavailable("failed to start the gRPC service: " + started.message());
  spdlog::info("Started GRPCInferenceService at {}:{}", flags.grpc_address, (*s)->port());
  return std::move(s).value();
}

Result<std::unique_ptr<http::HttpServer>> StartMetrics(
    const Flags& flags, std::function<std::string()> render_metrics) {
  http::Router router;  // no access guard: scrapers send no key (README "Security")
  http::RegisterMetricsRoute(router, std::move(render_metrics));
  http::HttpServerOptions options;
  options.address = flags.metrics_address;
  options.port = static_cast<uint16_t>(flags.metrics_port);
  options.io_threads = 1;
  options.max_connections = 64;  // scrapers
  auto s = http::HttpServer::Create(options, std::move(router));
  if (!s.ok() || !(*s)->Start().ok()) {
    return Unavailable(fmt::format("failed to start the metrics service on {}:{}",
                                   flags.metrics_address, flags.metrics_port));
  }
  spdlog::info("Started Metrics Service at {}:{}", flags.metrics_address, (*s)->port());
  return std::move(s).value();
}

// The frontends a process serves; each null when its flag turned it off.
struct Frontends {
  std::unique_ptr<http::HttpServer> http;
  std::unique_ptr<grpc_frontend::GrpcServer> grpc;
  std::unique_ptr<http::HttpServer> metrics;
};

Result<Frontends> StartFrontends(const Flags& flags, core::Server& server,
                                 const FrontendAccess& access,
                                 const std::function<std::string()>& render_metrics,
                                 size_t http_max_connections) {
  Frontends f;
  if (flags.allow_http) {
    ASSIGN_OR_RETURN(f.http,
                     StartHttp(flags, server, access, render_metrics, http_max_connections));
  }
  if (flags.allow_grpc) {
    ASSIGN_OR_RETURN(f.grpc, StartGrpc(flags, server, access));
  }
  if (flags.allow_metrics) {
    ASSIGN_OR_RETURN(f.metrics, StartMetrics(flags, render_metrics));
  }
  auto listener = [](bool on, const std::string& address, const auto& service) {
    return on && service ? address + ":" + std::to_string(service->port()) : std::string("off");
  };
  spdlog::info("sluice {} serving: HTTP {}, gRPC {}, metrics {}", SluiceVersion(),
               listener(flags.allow_http, flags.http_address, f.http),
               listener(flags.allow_grpc, flags.grpc_address, f.grpc),
               listener(flags.allow_metrics, flags.metrics_address, f.metrics));
  return f;
}

// Probes every listener (listener_watch.h); null with --listener-check-interval-ms 0.
std::unique_ptr<ListenerWatch> WatchListeners(const Flags& flags, const Frontends& f) {
  if (flags.listener_check_interval_ms <= 0) return nullptr;
  std::vector<WatchedListener> watched;
  using Kind = WatchedListener::Kind;
  if (f.http)
    watched.push_back({"HTTP", Kind::kHttp, flags.http_address, f.http->port(), "/v2/health/live"});
  if (f.grpc)
    watched.push_back(
        {"gRPC", Kind::kGrpc, flags.grpc_address, static_cast<uint16_t>(f.grpc->port()), ""});
  if (f.metrics)
    watched.push_back(
        {"metrics", Kind::kHttp, flags.metrics_address, f.metrics->port(), "/metrics"});
  ListenerWatchOptions watch_options;
  watch_options.period = std::chrono::milliseconds(flags.listener_check_interval_ms);
  return std::make_unique<ListenerWatch>(std::move(watched), watch_options);
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

  // Access control, checked before any model loads.
  auto access = BuildFrontendAccess(flags);
  if (!access.ok()) {
    spdlog::error("{}", access.status().message());
    return 1;
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

  const size_t http_max_connections = RaiseDescriptorsForHttp(flags);

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

  auto started = StartFrontends(flags, *server, *access, render_metrics, http_max_connections);
  if (!started.ok()) {
    spdlog::error("{}", started.status().message());
    return 1;
  }
  Frontends frontends = std::move(started).value();
  std::unique_ptr<ListenerWatch> watch = WatchListeners(flags, frontends);
  listener_watch.store(watch.get());

  const int sig = WaitForTerminationSignal(signals);
  spdlog::info("received {}, shutting down (exit timeout {}s)", sig == SIGINT ? "SIGINT" : "SIGTERM",
               flags.exit_timeout_secs);
  // A second signal during shutdown takes its default action (the process ends; stubs
  // follow through PR_SET_PDEATHSIG): only this thread unblocks them.
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);

  listener_watch.store(nullptr);
  watch.reset();  // before the listeners it probes stop
  server->Shutdown(std::chrono::seconds(flags.exit_timeout_secs));
  if (frontends.grpc) frontends.grpc->Stop();
  if (frontends.http) frontends.http->Stop();
  if (frontends.metrics) frontends.metrics->Stop();
  server.reset();
  spdlog::info("sluice exited cleanly");
  return 0;
}

}  // namespace
}  // namespace sluice::server

int main(int argc, char** argv) { return sluice::server::Run(argc, argv); }

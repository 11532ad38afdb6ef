// sluice-lifecycle: checks a model's whole lifecycle against a server speaking Triton's
// protocol (Sluice or Triton): load, streams (one cancelled, one disconnected),
// non-streaming requests, unload until UNAVAILABLE, GPU memory released (NVML), reload.
// Exit status 0 when every step passed or was skipped, 1 when one failed, 2 on usage errors.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "tools/lifecycle/checker.h"

namespace {

using namespace sluice;
using namespace sluice::lifecycle;

int Usage(const Status& st) {
  fprintf(stderr, "sluice-lifecycle: %s\n", st.ToString().c_str());
  return 2;
}

Status ParseJsonFlag(const std::string& flag, const std::string& text, nlohmann::json* out) {
  if (text.empty()) return Status::Ok();
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return InvalidArgument(flag + " must be a JSON object");
  *out = std::move(j);
  return Status::Ok();
}

// The command line: what the flags hold before FinishConfig turns them into `config`.
struct Flags {
  std::string url = "http://127.0.0.1:8000";
  std::string grpc_url = "127.0.0.1:8001";
  std::string preset = "llm";
  std::string stream_body, grpc_body, infer_body, load_body, json_path;
  std::string transports = "both";
  bool no_grpc = false, no_cancel = false, no_disconnect = false;
  double load_timeout_s = 300, unload_timeout_s = 60, request_timeout_s = 120;
  double gpu_settle_s = 10, gpu_tolerance_mib = 64;
  CheckerConfig config;
};

void AddFlags(CLI::App& app, Flags& f) {
  CheckerConfig& config = f.config;
  app.add_option("--url", f.url, "HTTP endpoint (control, generate_stream)")->capture_default_str();
  app.add_option("--grpc-url", f.grpc_url, "gRPC endpoint (ModelStreamInfer)")
      ->capture_default_str();
  app.add_flag("--no-grpc", f.no_grpc, "HTTP only: no gRPC streams, no cancel step");
  app.add_option("--model,-m", config.model, "model name")->required();
  app.add_option("--version", config.version, "model version (default: the one that is READY)");
  app.add_option("--preset", f.preset,
                 "request bodies: llm (text_input...) or repeat (IN/DELAY/WAIT)")
      ->capture_default_str();
  app.add_option("--streams", config.streams, "streaming requests per transport")
      ->capture_default_str();
  app.add_option("--requests", config.requests, "non-streaming requests")->capture_default_str();
  app.add_option("--stream-transports", f.transports, "http | grpc | both")->capture_default_str();
  app.add_flag("--no-cancel", f.no_cancel, "skip the cancelled gRPC stream");
  app.add_flag("--no-disconnect", f.no_disconnect, "skip the disconnected HTTP stream");
  app.add_option("--stream-body", f.stream_body,
                 "generate_stream JSON body (overrides the preset)");
  app.add_option(
      "--grpc-body", f.grpc_body,
      "ModelStreamInfer request as KServe JSON {\"inputs\": [...]} (overrides the preset)");
  app.add_option(
      "--infer-body", f.infer_body,
      "non-streaming JSON body (overrides the preset; for /infer the default is --grpc-body)");
  app.add_option("--infer-endpoint", config.infer_endpoint, "generate | infer")
      ->check(CLI::IsMember({"generate", "infer"}));
  app.add_option("--load-body", f.load_body, "JSON body of the load request");
  app.add_option("--load-timeout", f.load_timeout_s, "seconds to reach READY")
      ->capture_default_str();
  app.add_option("--unload-timeout", f.unload_timeout_s, "seconds to reach UNAVAILABLE")
      ->capture_default_str();
  app.add_option("--request-timeout", f.request_timeout_s, "seconds per request")
      ->capture_default_str();
  app.add_option("--gpu-settle", f.gpu_settle_s, "seconds NVML may take to show the release")
      ->capture_default_str();
  app.add_option("--gpu-tolerance-mib", f.gpu_tolerance_mib, "allowed leftover GPU memory")
      ->capture_default_str();
  app.add_flag("--unload-at-end", config.unload_at_end, "unload again after the final request");
  app.add_option("--json", f.json_path, "write the report as JSON to this file ('-' for stdout)");
}

// The checker's configuration from the parsed flags: endpoints, the preset's bodies with the
// flags' over them, transports and steps, timeouts.
Status FinishConfig(const CLI::App& app, Flags& f) {
  CheckerConfig& config = f.config;
  auto endpoint = client::ParseEndpoint(f.url, 80);
  if (!endpoint.ok()) return endpoint.status();
  config.http = *endpoint;
  config.grpc_target = f.no_grpc ? "" : f.grpc_url;
  std::string infer_endpoint = config.infer_endpoint;
  RETURN_IF_ERROR(ApplyPreset(f.preset, &config));
  if (app.count("--infer-endpoint")) config.infer_endpoint = infer_endpoint;
  // /infer takes KServe JSON: the same body as the gRPC request, unless one is given.
  if (config.infer_endpoint == "infer" && f.infer_body.empty())
    config.infer_body = config.grpc_body;
  for (auto [flag, text, out] : {std::tuple{"--stream-body", &f.stream_body, &config.stream_body},
                                 std::tuple{"--grpc-body", &f.grpc_body, &config.grpc_body},
                                 std::tuple{"--infer-body", &f.infer_body, &config.infer_body},
                                 std::tuple{"--load-body", &f.load_body, &config.load_body}}) {
    RETURN_IF_ERROR(ParseJsonFlag(flag, *text, out));
  }
  if (f.transports != "http" && f.transports != "grpc" && f.transports != "both") {
    return InvalidArgument("--stream-transports must be http, grpc or both");
  }
  config.http_streams = f.transports != "grpc";
  config.grpc_streams = f.transports != "http";
  config.cancel = !f.no_cancel;
  config.disconnect = !f.no_disconnect;
  auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  config.load_timeout = ms(f.load_timeout_s);
  config.unload_timeout = ms(f.unload_timeout_s);
  config.request_timeout = ms(f.request_timeout_s);
  config.gpu_settle_timeout = ms(f.gpu_settle_s);
  config.gpu_tolerance_bytes = static_cast<uint64_t>(f.gpu_tolerance_mib * 1024 * 1024);
  return Status::Ok();
}

// The report as text on stdout, and as JSON to `json_path` ("-": stdout instead of the text).
Status WriteReport(const LifecycleReport& report, const std::string& json_path) {
  if (json_path == "-") {
    printf("%s\n", ReportJson(report).dump(2).c_str());
    return Status::Ok();
  }
  fputs(FormatReport(report).c_str(), stdout);
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    f << ReportJson(report).dump(2) << "\n";
    if (!f) return Internal("cannot write the JSON report");
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  CLI::App app{
      "sluice-lifecycle: load -> streams (one cancelled, one disconnected) and non-streaming "
      "requests -> unload -> UNAVAILABLE -> GPU memory released (NVML) -> reload -> infer, "
      "for one model on a server speaking Triton's protocol. Prints a verdict per step; exit "
      "status 1 if any step failed, 2 on a usage error."};
  AddFlags(app, flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (Status st = FinishConfig(app, flags); !st.ok()) return Usage(st);
  std::unique_ptr<nvml::Nvml> nvml = nvml::Nvml::Load();
  LifecycleReport report = RunLifecycle(flags.config, nvml.get());
  if (Status st = WriteReport(report, flags.json_path); !st.ok()) return Usage(st);
  return report.ok() ? 0 : 1;
}

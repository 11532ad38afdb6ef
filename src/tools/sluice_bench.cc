// sluice-bench: a load generator for LLM servers (OpenAI API, Triton generate /
// generate_stream, gRPC ModelStreamInfer) reporting what `vllm bench serve` and genai-perf
// report. Run `sluice-bench --help`.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <optional>

#include "tools/bench/api.h"
#include "tools/bench/http_transport.h"
#include "tools/bench/progress.h"
#include "tools/bench/report.h"
#include "tools/bench/runner.h"
#include "tools/bench/workload.h"
#ifdef SLUICE_HAVE_GRPC_SERVICE
#include "tools/bench/grpc_transport.h"
#endif

namespace {

using namespace sluice;
using namespace sluice::bench;

struct Flags {
  std::string url = "http://127.0.0.1:8000";
  std::string grpc_url = "127.0.0.1:8001";
  std::string api = "completions";
  std::string model;
  size_t num_requests = 0;
  double duration_s = 0;
  size_t max_concurrency = 0;
  double request_rate = std::numeric_limits<double>::infinity();
  double burstiness = 1.0;
  size_t warmup = 0;
  uint64_t seed = 0;
  int64_t input_len = 128;
  int64_t shared_prefix_len = 0;
  int64_t output_len = 128;
  std::string length_dist = "fixed";
  double range_ratio = 0.0;
  double stddev_ratio = 0.0;
  std::string prompts_file;
  std::string word_list;
  bool no_stream = false;
  bool no_ignore_eos = false;
  bool no_min_tokens = false;
  double temperature = 0.0;
  uint64_t sampling_seed = 0;
  bool has_sampling_seed = false;
  std::string extra_body;
  std::string raw_body;
  double timeout_s = 300;
  std::string json_path;
  bool no_progress = false;
  bool save_text = false;
};

int Fail(const Status& st) {
  fprintf(stderr, "sluice-bench: %s\n", st.ToString().c_str());
  return 2;
}

std::string Now() {
  std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// The requests to send: a JSONL file's, or synthetic prompts.
Result<std::vector<BenchRequest>> MakeWorkload(const Flags& f) {
  if (!f.prompts_file.empty()) return LoadJsonlRequests(f.prompts_file, f.output_len);
  SyntheticSpec spec;
  spec.input_len = f.input_len;
  spec.output_len = f.output_len;
  spec.shared_prefix_len = f.shared_prefix_len;
  ASSIGN_OR_RETURN(spec.distribution, ParseLengthDistribution(f.length_dist));
  spec.range_ratio = f.range_ratio;
  spec.stddev_ratio = f.stddev_ratio;
  spec.seed = f.seed;
  if (!f.word_list.empty()) {
    ASSIGN_OR_RETURN(spec.words, LoadWordList(f.word_list));
  }
  // A duration run cycles through a pool of distinct prompts.
  const size_t needed = std::max<size_t>(f.num_requests, 1) + f.warmup;
  return MakeSyntheticRequests(spec, f.num_requests > 0 ? needed : 1000 + f.warmup);
}

Result<SamplingOptions> MakeSampling(const Flags& f, Api api) {
  SamplingOptions sampling;
  sampling.stream = !f.no_stream;
  sampling.ignore_eos = !f.no_ignore_eos;
  sampling.send_min_tokens = !f.no_min_tokens;
  sampling.temperature = f.temperature;
  if (f.has_sampling_seed) sampling.seed = f.sampling_seed;
  if (!f.extra_body.empty()) {
    sampling.extra = nlohmann::json::parse(f.extra_body, nullptr, false);
    if (!sampling.extra.is_object()) return InvalidArgument("--extra-body must be a JSON object");
  }
  if (!f.raw_body.empty()) {
    auto raw = nlohmann::json::parse(f.raw_body, nullptr, false);
    if (!raw.is_object()) return InvalidArgument("--raw-body must be a JSON object");
    if (api == Api::kGrpcStream && !(raw.contains("inputs") && raw["inputs"].is_array())) {
      return InvalidArgument("--raw-body for --api grpc must be KServe JSON {\"inputs\": [...]}");
    }
    sampling.raw_body = std::move(raw);
  }
  return sampling;
}

// Makes one transport per concurrent client: gRPC ModelStreamInfer or HTTP.
Result<TransportFactory> MakeTransportFactory(const Flags& f, Api api,
                                              const SamplingOptions& sampling) {
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  if (api == Api::kGrpcStream) {
#ifdef SLUICE_HAVE_GRPC_SERVICE
    GrpcTransportConfig cfg;
    cfg.target = f.grpc_url;
    cfg.model = f.model;
    cfg.sampling = sampling;
    cfg.timeout = timeout;
    cfg.keep_text = f.save_text;
    auto channel = MakeGrpcTransportChannel(cfg.target);
    return TransportFactory([cfg, channel]() -> Result<std::unique_ptr<Transport>> {
      return MakeGrpcTransport(cfg, channel);
    });
#else
    return Unsupported("this build has no gRPC service proto");
#endif
  }
  ASSIGN_OR_RETURN(client::Endpoint endpoint, client::ParseEndpoint(f.url, 80));
  HttpTransportConfig cfg;
  cfg.api = api;
  cfg.endpoint = endpoint;
  cfg.model = f.model;
  cfg.sampling = sampling;
  cfg.http.io_timeout = timeout;
  cfg.keep_text = f.save_text;
  return TransportFactory(
      [cfg]() -> Result<std::unique_ptr<Transport>> { return MakeHttpTransport(cfg); });
}

RunSpec MakeRunSpec(const Flags& f) {
  RunSpec spec;
  spec.num_requests = f.num_requests;
  spec.duration_s = f.num_requests > 0 ? 0 : f.duration_s;
  spec.max_concurrency = f.max_concurrency;
  spec.request_rate = std::isfinite(f.request_rate) ? f.request_rate : 0;
  spec.burstiness = f.burstiness;
  spec.seed = f.seed;
  spec.warmup_requests = f.warmup;
  return spec;
}

// The "config" object of the JSON report: what was run, against what.
nlohmann::json ReportConfig(const Flags& f, Api api, const RunSpec& spec,
                            const SamplingOptions& sampling) {
  return {
      {"date", Now()},
      {"api", std::string(ApiName(api))},
      {"url", api == Api::kGrpcStream ? f.grpc_url : f.url},
      {"model", f.model},
      {"num_requests", f.num_requests},
      {"duration_limit_s", spec.duration_s},
      {"max_concurrency", f.max_concurrency},
      {"request_rate",
       spec.request_rate > 0 ? nlohmann::json(spec.request_rate) : nlohmann::json("inf")},
      {"burstiness", f.burstiness},
      {"warmup", f.warmup},
      {"seed", f.seed},
      {"dataset", f.prompts_file.empty() ? "synthetic" : "jsonl"},
      {"input_len", f.input_len},
      {"shared_prefix_len", f.shared_prefix_len},
      {"output_len", f.output_len},
      {"length_dist", f.length_dist},
      {"stream", IsStreaming(api, sampling.stream)},
      {"ignore_eos", sampling.ignore_eos},
  };
}

int Run(const Flags& f) {
  auto api = ParseApi(f.api);
  if (!api.ok()) return Fail(api.status());
  if (f.model.empty()) return Fail(InvalidArgument("--model is required"));
  if (f.num_requests == 0 && !(f.duration_s > 0)) {
    return Fail(InvalidArgument("give --num-requests or --duration"));
  }
  auto requests = MakeWorkload(f);
  if (!requests.ok()) return Fail(requests.status());
  auto sampling = MakeSampling(f, *api);
  if (!sampling.ok()) return Fail(sampling.status());
  auto factory = MakeTransportFactory(f, *api, *sampling);
  if (!factory.ok()) return Fail(factory.status());
  const RunSpec spec = MakeRunSpec(f);

  const bool tty = isatty(STDERR_FILENO);
  RunProgress progress;
  std::optional<ProgressDisplay> display;
  if (!f.no_progress) display.emplace(&progress, spec.num_requests, spec.duration_s, stderr, tty);
  auto out = RunBenchmark(spec, *requests, *factory, &progress);
  if (display) display->Stop();
  if (!out.ok()) return Fail(out.status());

  BenchSummary summary = Summarize(out->results, out->duration_s);
  std::string title = "Serving Benchmark Result (" + std::string(ApiName(*api)) + ")";
  fputs(FormatReport(summary, title).c_str(), stdout);
  if (!f.json_path.empty()) {
    nlohmann::json report = ReportJson(summary, ReportConfig(f, *api, spec, *sampling));
    if (f.save_text) {
      report["generated_texts"] = nlohmann::json::array();
      for (const auto& r : out->results) report["generated_texts"].push_back(r.generated_text);
    }
    std::ofstream file(f.json_path);
    file << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    if (!file) return Fail(Internal("cannot write the JSON report"));
  }
  return summary.completed > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  CLI::App app{
      "sluice-bench: load generator for LLM servers (OpenAI API, Triton generate and "
      "generate_stream, gRPC ModelStreamInfer). Reports request and token throughput, TTFT, "
      "TPOT, ITL and end-to-end latency as `vllm bench serve` does.\nExit status: 0 when at "
      "least one request completed, 1 when none did, 2 on a usage or setup error."};
  app.add_option("--url", f.url, "HTTP server URL")->capture_default_str();
  app.add_option("--grpc-url", f.grpc_url, "gRPC server host:port (for --api grpc)")
      ->capture_default_str();
  app.add_option("--api", f.api, "chat | completions | generate | generate_stream | grpc")
      ->capture_default_str();
  app.add_option("--model,-m", f.model, "model name")->required();
  auto* n = app.add_option("--num-requests,-n", f.num_requests,
                           "measured requests (default 100 unless --duration)");
  auto* d = app.add_option("--duration", f.duration_s, "seconds to send requests for");
  n->excludes(d);
  app.add_option("--max-concurrency,-c", f.max_concurrency,
                 "requests in flight at most (0: unlimited, capped at 512)");
  app.add_option("--request-rate,-r", f.request_rate, "requests per second (default inf)");
  app.add_option("--burstiness", f.burstiness,
                 "gamma shape of inter-arrivals: 1 Poisson, <1 burstier, >1 steadier")
      ->capture_default_str();
  app.add_option("--warmup", f.warmup, "warm-up requests, not measured")->capture_default_str();
  app.add_option("--seed", f.seed, "seed for prompts, lengths and arrivals")
      ->capture_default_str();
  app.add_option("--input-len", f.input_len, "prompt length in tokens (about one per word)")
      ->capture_default_str();
  app.add_option("--output-len", f.output_len, "tokens to generate")->capture_default_str();
  app.add_option("--shared-prefix-len", f.shared_prefix_len,
                 "words every synthetic prompt starts with, the same for all (prefix caching), "
                 "before its --input-len words of its own")
      ->capture_default_str();
  app.add_option("--length-dist", f.length_dist, "fixed | uniform | normal")
      ->capture_default_str();
  app.add_option("--range-ratio", f.range_ratio, "uniform: lengths in len*(1 +- ratio)");
  app.add_option("--stddev-ratio", f.stddev_ratio, "normal: stddev = len * ratio");
  app.add_option("--prompts-file", f.prompts_file,
                 "JSONL file of {\"prompt\": ..., \"max_tokens\": ...} lines");
  app.add_option("--word-list", f.word_list, "words for synthetic prompts (whitespace-separated)");
  app.add_flag("--no-stream", f.no_stream, "OpenAI APIs: ask for a non-streamed response");
  app.add_flag("--no-ignore-eos", f.no_ignore_eos, "do not send ignore_eos");
  app.add_flag("--no-min-tokens", f.no_min_tokens, "do not send min_tokens = max_tokens");
  app.add_option("--temperature", f.temperature)->capture_default_str();
  app.add_option("--sampling-seed", f.sampling_seed, "seed sent with each request");
  app.add_option("--extra-body", f.extra_body, "JSON object merged into each request");
  app.add_option("--raw-body", f.raw_body,
                 "JSON sent as each request instead of a prompt (HTTP: the body; grpc: KServe "
                 "{\"inputs\": [...]}); every streamed response counts as one output token. "
                 "For models outside the LLM contract, e.g. repeat");
  app.add_option("--timeout", f.timeout_s, "seconds allowed for each read or write")
      ->capture_default_str();
  app.add_option("--json", f.json_path, "write the full report as JSON to this file");
  app.add_flag("--save-text", f.save_text, "include generated texts in the JSON report");
  app.add_flag("--no-progress", f.no_progress, "no progress display on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  f.has_sampling_seed = app.count("--sampling-seed") > 0;
  if (f.num_requests == 0 && !(f.duration_s > 0)) f.num_requests = 100;
  return Run(f);
}

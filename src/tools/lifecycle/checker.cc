#include "tools/lifecycle/checker.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "tools/client/http_client.h"
#ifdef SLUICE_HAVE_GRPC_SERVICE
#include "tools/client/grpc/stream_infer_client.h"
#endif

namespace sluice::lifecycle {

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

std::string ErrorOf(const client::HttpResponse& r) {
  nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
  std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                        ? j["error"].get<std::string>()
                        : r.body.substr(0, 200);
  return "HTTP " + std::to_string(r.status) + ": " + msg;
}

}  // namespace

Status ApplyPreset(const std::string& preset, CheckerConfig* c) {
  if (preset == "repeat") {
    // Ten responses 50 ms apart: long enough to cancel and disconnect mid-stream.
    std::vector<int> in = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    std::vector<int> delay(in.size(), 50);
    c->stream_body = {{"IN", in}, {"DELAY", delay}, {"WAIT", {0}}};
    c->grpc_body = {{"inputs",
                     {{{"name", "IN"}, {"datatype", "INT32"}, {"shape", {in.size()}}, {"data", in}},
                      {{"name", "DELAY"}, {"datatype", "UINT32"}, {"shape", {delay.size()}},
                       {"data", delay}},
                      {{"name", "WAIT"}, {"datatype", "UINT32"}, {"shape", {1}}, {"data", {0}}}}}};
    c->infer_body = {{"IN", {7}}, {"DELAY", {0}}, {"WAIT", {0}}};
    c->infer_endpoint = "generate";
    return Status::Ok();
  }
  if (preset == "llm") {
    nlohmann::json sampling = {{"max_tokens", 32}, {"ignore_eos", true}, {"temperature", 0}};
    c->stream_body = {{"text_input", "Tell me a story about a river."},
                      {"parameters", {{"stream", true}, {"max_tokens", 32},
                                      {"ignore_eos", true}, {"temperature", 0}}}};
    c->grpc_body = {
        {"inputs",
         {{{"name", "text_input"}, {"datatype", "BYTES"}, {"shape", {1}},
           {"data", {"Tell me a story about a river."}}},
          {{"name", "stream"}, {"datatype", "BOOL"}, {"shape", {1}}, {"data", {true}}},
          {{"name", "sampling_parameters"}, {"datatype", "BYTES"}, {"shape", {1}},
           {"data", {sampling.dump()}}}}}};
    c->infer_body = {{"text_input", "Hello"},
                     {"parameters", {{"max_tokens", 8}, {"temperature", 0}}}};
    c->infer_endpoint = "generate";
    return Status::Ok();
  }
  return InvalidArgument("preset '" + preset + "': expected repeat or llm");
}

Result<ModelIndexEntry> ModelStateFromIndex(const nlohmann::json& index,
                                            const std::string& model,
                                            const std::string& version) {
  if (!index.is_array()) return InvalidArgument("repository index is not a JSON array");
  ModelIndexEntry out;
  bool any = false, ready = false, moving = false;
  for (const auto& e : index) {
    if (!e.is_object() || !e.contains("name") || e["name"] != model) continue;
    std::string v = e.contains("version") && e["version"].is_string() ? e["version"].get<std::string>() : "";
    if (!version.empty() && v != version) continue;
    std::string state = e.contains("state") && e["state"].is_string() ? e["state"].get<std::string>() : "";
    std::string reason = e.contains("reason") && e["reason"].is_string() ? e["reason"].get<std::string>() : "";
    if (!any || state == "READY" || (!ready && (state == "LOADING" || state == "UNLOADING"))) {
      out.raw_state = state;
      out.version = v;
      out.reason = reason;
    }
    any = true;
    if (state == "READY") ready = true;
    if (state == "LOADING" || state == "UNLOADING") moving = true;
  }
  out.state = !any ? IndexState::kAbsent
              : ready ? IndexState::kReady
              : moving ? IndexState::kTransitioning
                       : IndexState::kUnavailable;
  return out;
}

namespace {

class Checker {
 public:
  Checker(const CheckerConfig& c, const nvml::Nvml* nvml) : c_(c), nvml_(nvml) {
    client::HttpClientOptions o;
    o.io_timeout = c.request_timeout;
    http_options_ = o;
    http_ = client::HttpClient::Create(c.http, o);
#ifdef SLUICE_HAVE_GRPC_SERVICE
    if (!c.grpc_target.empty()) channel_ = client::MakeChannel(c.grpc_target);
#endif
  }

  LifecycleReport Run() {
    report_.model = c_.model;
    report_.server = c_.http.ToString();
    GpuSnapshot before = Snapshot("before");
    if (!Load("load")) return Finish();
    GpuSnapshot ready = Snapshot("ready");
    Streams();
    NonStreaming("requests (" + c_.infer_endpoint + ")", c_.requests);
    std::string version = ready_version_;
    bool unloaded = Unload("unload", version);
    GpuCheck(before, ready, unloaded);
    if (Load("reload")) {
      NonStreaming("request after reload", 1);
      if (c_.unload_at_end) Unload("final unload", ready_version_);
    }
    return Finish();
  }

 private:
  LifecycleReport Finish() { return std::move(report_); }

  GpuSnapshot Snapshot(const char* label) {
    auto s = TakeGpuSnapshot(nvml_);
    if (!s.ok()) {
      gpu_error_ = s.status().ToString();
      return GpuSnapshot();
    }
    if (s->available) report_.gpu[label] = SnapshotJson(*s);
    return *s;
  }

  Result<ModelIndexEntry> QueryIndex(const std::string& version) {
    ASSIGN_OR_RETURN(client::HttpResponse r, http_->Post("/v2/repository/index", "{}"));
    if (r.status != 200) return Unavailable("repository index: " + ErrorOf(r));
    nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    return ModelStateFromIndex(j, c_.model, version);
  }

  // Polls the index until `want` or the deadline; returns the last entry seen. Waiting for
  // UNAVAILABLE also ends when the model is no longer listed.
  Result<ModelIndexEntry> PollIndex(IndexState want, Clock::time_point deadline,
                                    const std::string& version) {
    while (true) {
      ASSIGN_OR_RETURN(ModelIndexEntry e, QueryIndex(version));
      bool done = e.state == want ||
                  (want == IndexState::kUnavailable && e.state == IndexState::kAbsent);
      if (done || Clock::now() >= deadline) return e;
      std::this_thread::sleep_for(c_.poll_interval);
    }
  }

  bool Load(const std::string& step) {
    Clock::time_point start = Clock::now();
    auto r = http_->Post("/v2/repository/models/" + c_.model + "/load", c_.load_body.dump());
    if (!r.ok()) {
      report_.Add(step, Verdict::kFail, MsSince(start), r.status().ToString());
      return false;
    }
    if (r->status != 200) {
      report_.Add(step, Verdict::kFail, MsSince(start), ErrorOf(*r));
      return false;
    }
    auto e = PollIndex(IndexState::kReady, start + c_.load_timeout, c_.version);
    if (!e.ok()) {
      report_.Add(step, Verdict::kFail, MsSince(start), e.status().ToString());
      return false;
    }
    if (e->state != IndexState::kReady) {
      report_.Add(step, Verdict::kFail, MsSince(start),
                  "not READY within " + std::to_string(c_.load_timeout.count()) +
                      " ms: state " + e->raw_state + (e->reason.empty() ? "" : " (" + e->reason + ")"));
      return false;
    }
    ready_version_ = c_.version.empty() ? e->version : c_.version;
    report_.Add(step, Verdict::kPass, MsSince(start), "READY, version " + e->version);
    return true;
  }

  bool Unload(const std::string& step, const std::string& version) {
    Clock::time_point start = Clock::now();
    auto r = http_->Post("/v2/repository/models/" + c_.model + "/unload", "{}");
    if (!r.ok() || r->status != 200) {
      report_.Add(step, Verdict::kFail, MsSince(start),
                  r.ok() ? ErrorOf(*r) : r.status().ToString());
      return false;
    }
    double call_ms = MsSince(start);
    auto e = PollIndex(IndexState::kUnavailable, start + c_.unload_timeout, version);
    double ms = MsSince(start);
    if (!e.ok()) {
      report_.Add(step, Verdict::kFail, ms, e.status().ToString());
      return false;
    }
    if (e->state != IndexState::kUnavailable && e->state != IndexState::kAbsent) {
      report_.Add(step, Verdict::kFail, ms,
                  "still " + e->raw_state + " after " + std::to_string(c_.unload_timeout.count()) +
                      " ms (unload call took " + std::to_string(static_cast<int>(call_ms)) + " ms)");
      return false;
    }
    report_.Add(step, Verdict::kPass, ms,
                "UNAVAILABLE" + (e->reason.empty() ? std::string() : " (" + e->reason + ")") +
                    "; unload call returned after " + std::to_string(static_cast<int>(call_ms)) +
                    " ms");
    return true;
  }

  void GpuCheck(const GpuSnapshot& before, const GpuSnapshot& ready, bool unloaded) {
    Clock::time_point start = Clock::now();
    if (!gpu_error_.empty()) {
      report_.Add("gpu memory released", Verdict::kFail, 0, gpu_error_);
      return;
    }
    if (!before.available) {
      report_.Add("gpu memory released", Verdict::kSkip, 0, "skipped: no GPU");
      return;
    }
    if (!unloaded) {
      report_.Add("gpu memory released", Verdict::kSkip, 0, "skipped: the unload did not finish");
      return;
    }
    // NVML's accounting lags process exit slightly: poll until it passes or the bound.
    GpuRelease verdict;
    GpuSnapshot after;
    while (true) {
      after = Snapshot("after");
      verdict = EvaluateGpuRelease(before, ready, after, c_.gpu_tolerance_bytes);
      if (verdict.verdict != Verdict::kFail || Clock::now() - start >= c_.gpu_settle_timeout) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    report_.Add("gpu memory released", verdict.verdict, MsSince(start), verdict.detail);
  }

  struct StreamOutcome {
    bool ok = false;
    int responses = 0;
    double ms = 0;
    std::string error;
  };

  // One generate_stream request; `disconnect_after` > 0 closes the socket after that many
  // events.
  StreamOutcome HttpStream(int disconnect_after) {
    StreamOutcome o;
    Clock::time_point start = Clock::now();
    auto client = client::HttpClient::Create(c_.http, http_options_);
    auto s = client->PostSse("/v2/models/" + c_.model + "/generate_stream", c_.stream_body.dump());
    if (!s.ok()) {
      o.error = s.status().ToString();
      return o;
    }
    if ((*s)->status() != 200) {
      auto body = (*s)->ReadBody();
      client::HttpResponse r{(*s)->status(), {}, body.ok() ? *body : ""};
      o.error = ErrorOf(r);
      return o;
    }
    while (true) {
      auto ev = (*s)->Next();
      if (!ev.ok()) {
        o.error = ev.status().ToString();
        break;
      }
      if (!ev->has_value()) {
        o.ok = o.responses > 0;
        if (!o.ok) o.error = "stream ended without a response";
        break;
      }
      nlohmann::json j = nlohmann::json::parse((*ev)->data, nullptr, false);
      if (j.is_object() && j.contains("error")) {
        o.error = "in-band error: " + j["error"].dump();
        break;
      }
      ++o.responses;
      if (disconnect_after > 0 && o.responses >= disconnect_after) {
        (*s)->Close();
        o.ok = true;
        break;
      }
    }
    o.ms = MsSince(start);
    return o;
  }

#ifdef SLUICE_HAVE_GRPC_SERVICE
  // One ModelStreamInfer request; `cancel_after` > 0 cancels the call after that many
  // responses and expects CANCELLED.
  StreamOutcome GrpcStream(int cancel_after) {
    StreamOutcome o;
    Clock::time_point start = Clock::now();
    auto req = client::RequestFromJson(c_.model, c_.grpc_body);
    if (!req.ok()) {
      o.error = req.status().ToString();
      return o;
    }
    if (!c_.version.empty()) req->set_model_version(c_.version);
    // Without it a backend that sends its final flag alone is never seen as finished.
    (*req->mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
    client::StreamOptions options;
    options.deadline = c_.request_timeout;
    auto call = client::StreamInferClient::Open(channel_, options);
    if (!call.ok()) {
      o.error = call.status().ToString();
      return o;
    }
    if (Status st = (*call)->Write(*req); !st.ok()) {
      o.error = client::FromGrpcStatus((*call)->Finish()).ToString();
      return o;
    }
    bool final_seen = false;
    while (!final_seen) {
      auto r = (*call)->Read();
      if (!r.ok() || !r->has_value()) break;
      if (!(*r)->error_message().empty()) {
        o.error = "error_message: " + (*r)->error_message();
        break;
      }
      ++o.responses;
      final_seen = client::IsFinalResponse((*r)->infer_response());
      if (cancel_after > 0 && o.responses >= cancel_after) {
        Clock::time_point cancel_at = Clock::now();
        (*call)->Cancel();
        grpc::Status st = (*call)->Finish();
        o.ms = MsSince(start);
        if (st.error_code() == grpc::StatusCode::CANCELLED) {
          o.ok = true;
          o.error = "CANCELLED " + std::to_string(static_cast<int>(MsSince(cancel_at))) +
                    " ms after the cancel";
        } else {
          o.error = "expected CANCELLED, got " + client::FromGrpcStatus(st).ToString();
        }
        return o;
      }
    }
    (*call)->WritesDone();
    grpc::Status st = (*call)->Finish();
    if (o.error.empty()) {
      if (final_seen) {
        o.ok = true;
      } else {
        o.error = st.ok() ? "stream ended without triton_final_response"
                          : client::FromGrpcStatus(st).ToString();
      }
    }
    o.ms = MsSince(start);
    return o;
  }
#endif

  void Streams() {
    const bool grpc_on = !c_.grpc_target.empty();
    std::vector<StreamOutcome> http(c_.http_streams ? c_.streams : 0);
    std::vector<StreamOutcome> grpc_out(c_.grpc_streams && grpc_on ? c_.streams : 0);
    StreamOutcome cancelled, disconnected;
    {
      std::vector<std::thread> threads;  // joined below, before the outcomes are read
      for (auto& o : http) threads.emplace_back([&o, this] { o = HttpStream(0); });
#ifdef SLUICE_HAVE_GRPC_SERVICE
      for (auto& o : grpc_out) threads.emplace_back([&o, this] { o = GrpcStream(0); });
      if (c_.cancel && grpc_on) threads.emplace_back([&] { cancelled = GrpcStream(1); });
#endif
      if (c_.disconnect) threads.emplace_back([&] { disconnected = HttpStream(1); });
      for (auto& t : threads) t.join();
    }
    auto summarize = [&](const std::string& name, const std::vector<StreamOutcome>& v) {
      if (v.empty()) {
        report_.Add(name, Verdict::kSkip, 0, "skipped");
        return;
      }
      int ok = 0, responses = 0;
      double ms = 0;
      std::string first_error;
      for (const auto& o : v) {
        ok += o.ok ? 1 : 0;
        responses += o.responses;
        ms = std::max(ms, o.ms);
        if (!o.ok && first_error.empty()) first_error = o.error;
      }
      std::string detail = std::to_string(ok) + "/" + std::to_string(v.size()) +
                           " completed, " + std::to_string(responses) + " responses";
      if (!first_error.empty()) detail += "; first error: " + first_error;
      report_.Add(name, ok == static_cast<int>(v.size()) ? Verdict::kPass : Verdict::kFail, ms,
                  detail);
    };
    summarize("streams (generate_stream)", http);
#ifdef SLUICE_HAVE_GRPC_SERVICE
    summarize("streams (grpc)", grpc_out);
    if (c_.cancel && grpc_on) {
      report_.Add("cancel mid-stream (grpc)", cancelled.ok ? Verdict::kPass : Verdict::kFail,
                  cancelled.ms, cancelled.error);
    } else {
      report_.Add("cancel mid-stream (grpc)", Verdict::kSkip, 0,
                  c_.cancel ? "skipped: no gRPC target" : "skipped (--no-cancel)");
    }
#else
    report_.Add("streams (grpc)", Verdict::kSkip, 0, "skipped: built without gRPC");
    report_.Add("cancel mid-stream (grpc)", Verdict::kSkip, 0, "skipped: built without gRPC");
#endif
    if (c_.disconnect) {
      report_.Add("disconnect mid-stream (http)",
                  disconnected.ok ? Verdict::kPass : Verdict::kFail, disconnected.ms,
                  disconnected.ok ? "closed the socket after the first event" : disconnected.error);
    } else {
      report_.Add("disconnect mid-stream (http)", Verdict::kSkip, 0, "skipped");
    }
  }

  void NonStreaming(const std::string& step, int n) {
    if (n <= 0) {
      report_.Add(step, Verdict::kSkip, 0, "skipped");
      return;
    }
    Clock::time_point start = Clock::now();
    std::string path = "/v2/models/" + c_.model +
                       (c_.version.empty() ? "" : "/versions/" + c_.version) + "/" +
                       c_.infer_endpoint;
    int ok = 0;
    std::string first_error;
    for (int i = 0; i < n; ++i) {
      auto r = http_->Post(path, c_.infer_body.dump());
      if (r.ok() && r->status == 200) {
        ++ok;
      } else if (first_error.empty()) {
        first_error = r.ok() ? ErrorOf(*r) : r.status().ToString();
      }
    }
    std::string detail = std::to_string(ok) + "/" + std::to_string(n) + " succeeded";
    if (!first_error.empty()) detail += "; first error: " + first_error;
    report_.Add(step, ok == n ? Verdict::kPass : Verdict::kFail, MsSince(start), detail);
  }

  const CheckerConfig& c_;
  const nvml::Nvml* nvml_;
  client::HttpClientOptions http_options_;
  std::unique_ptr<client::HttpClient> http_;
#ifdef SLUICE_HAVE_GRPC_SERVICE
  std::shared_ptr<grpc::Channel> channel_;
#endif
  LifecycleReport report_;
  std::string ready_version_;
  std::string gpu_error_;
};

}  // namespace

LifecycleReport RunLifecycle(const CheckerConfig& config, const nvml::Nvml* nvml) {
  try {
    Checker checker(config, nvml);
    return checker.Run();
  } catch (const std::exception& e) {
    LifecycleReport r;
    r.model = config.model;
    r.server = config.http.ToString();
    r.Add("internal", Verdict::kFail, 0, std::string("unexpected exception: ") + e.what());
    return r;
  }
}

}  // namespace sluice::lifecycle

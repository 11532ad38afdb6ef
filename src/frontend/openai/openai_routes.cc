#include "frontend/openai/openai_routes.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "common/llm_protocol.h"
#include "common/thread_annotations.h"
#include "common/version.h"
#include "frontend/http/http_status.h"
#include "frontend/http/json_util.h"
#include "frontend/openai/completion_assembler.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/served_models.h"
#include "frontend/openai/tokenize_routes.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::openai {
namespace {

namespace proto = llm_protocol;
using nlohmann::json;

int64_t NowSecs() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string RandomId(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[40];
  snprintf(buf, sizeof buf, "%s-%016llx%04llx", prefix, static_cast<unsigned long long>(rng()),
           static_cast<unsigned long long>(counter++ & 0xffff));
  return buf;
}

// The typed output of one response (the llm backend's sluice_llm_output).
Result<llm_contract::LlmOutput> TypedOutput(const InferResponse& r) {
  const Tensor* t = FindTensor(r.outputs, proto::kLlmOutput);
  if (t == nullptr) return Internal("the model's response lacks its output");
  return ipc::DecodeLlmOutput(t->data);
}

// One request (n choices) from the first event to the last: sends each choice's request and
// writes what the assembler makes of their outputs. Thread-safe: the choices' events arrive
// on core threads.
class Completion : public std::enable_shared_from_this<Completion> {
 public:
  // `repository_model` answers to the request's model name (served_models.h).
  Completion(OpenAIRequest request, std::string repository_model,
             std::shared_ptr<http::ResponseWriter> writer)
      : r_(std::move(request)),
        repository_model_(std::move(repository_model)),
        writer_(std::move(writer)),
        assembler_(r_, RandomId(r_.chat ? "chatcmpl" : "cmpl"), NowSecs()),
        handles_(NumChoices(r_)) {}

  void Start(core::InferenceService& service) SLUICE_EXCLUDES(mu_) {
    auto self = shared_from_this();
    writer_->OnDisconnect([self] { self->CancelAll(); });
    const int total = NumChoices(r_);
    for (int i = 0; i < total; ++i) {
      auto request = BuildContractRequest(ChoiceContract(r_, i), repository_model_);
      auto handle =
          request.ok()
              ? service.Infer(std::move(request).value(),
                              [self, i](ResponseEvent ev) { self->OnEvent(i, std::move(ev)); })
              : Result<std::shared_ptr<core::InflightRequest>>(request.status());
      MutexLock lock(mu_);
      if (handle.ok()) {
        handles_[i] = std::move(handle).value();
        continue;
      }
      if (!failed_) failed_ = handle.status();
      if (++finished_ == total) FinishLocked();
    }
    if (writer_->Disconnected()) CancelAll();
  }

 private:
  void CancelAll() SLUICE_EXCLUDES(mu_) {
    std::vector<std::shared_ptr<core::InflightRequest>> handles;
    {
      MutexLock lock(mu_);
      for (auto& h : handles_)
        if (h) handles.push_back(h);
    }
    for (auto& h : handles) h->Cancel();
  }

  void OnEvent(int i, ResponseEvent ev) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (!ev.status.ok() && !failed_) failed_ = ev.status;
    if (ev.has_response) {
      auto output = TypedOutput(ev.response);
      if (!output.ok()) {
        if (!failed_) failed_ = output.status();
      } else if (auto chunk = assembler_.Add(i, *output); chunk && !failed_) {
        StartStreamLocked();
        writer_->WriteChunk(*chunk);
      }
    }
    if (ev.final && ++finished_ == static_cast<int>(handles_.size())) FinishLocked();
  }

  // A stream's 200 goes out with its first chunk: a request refused before it (a schema the
  // model cannot compile, a prompt past the context) is answered with its HTTP status, as a
  // request that does not stream, and as vLLM answers it.
  void StartStreamLocked() SLUICE_REQUIRES(mu_) {
    if (stream_started_) return;
    stream_started_ = true;
    writer_->StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
  }

  void FinishLocked() SLUICE_REQUIRES(mu_) {
    if (r_.stream && (stream_started_ || !failed_)) {
      StartStreamLocked();
      writer_->WriteChunk(assembler_.StreamEnd(failed_));
      writer_->EndStream();
    } else if (failed_) {
      SendOpenAIError(*writer_, *failed_);
    } else {
      writer_->SendJson(200, assembler_.Body());
    }
  }

  const OpenAIRequest r_;
  const std::string repository_model_;
  const std::shared_ptr<http::ResponseWriter> writer_;
  Mutex mu_;
  CompletionAssembler assembler_ SLUICE_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<core::InflightRequest>> handles_ SLUICE_GUARDED_BY(mu_);
  int finished_ SLUICE_GUARDED_BY(mu_) = 0;
  std::optional<Status> failed_ SLUICE_GUARDED_BY(mu_);
  bool stream_started_ SLUICE_GUARDED_BY(mu_) = false;
};

void HandleCompletion(core::InferenceService& service, const http::RequestLimits& limits, bool chat,
                      const http::HttpRequest& request, std::shared_ptr<http::ResponseWriter> writer) {
  auto body = http::ParseJsonBounded(request.body, limits.max_json_depth);
  if (!body.ok()) return SendOpenAIError(*writer, body.status());
  // A schema's properties are generated in the client's order, and a template shows the
  // kwargs' members in it: the body read again in order, big integers as written.
  const nlohmann::ordered_json in_order = ReadBodyInOrder(*body, request.body);
  const bool ordered = in_order.is_object();
  auto parsed = ParseOpenAIRequest(*body, chat, ordered ? &in_order : nullptr);
  if (!parsed.ok()) return SendOpenAIError(*writer, parsed.status());
  auto model = ResolveServedModel(service, parsed->model);
  if (!model.ok()) return SendOpenAIError(*writer, model.status());
  auto completion = std::make_shared<Completion>(std::move(parsed).value(), std::move(model).value(), std::move(writer));
  completion->Start(service);
}

// vLLM's ModelCard.
json ModelCard(const ServedModel& m) {
  return json{{"id", m.name}, {"object", "model"}, {"created", NowSecs()}, {"owned_by", "sluice"},
              {"root", m.repository_name}, {"parent", nullptr}, {"permission", json::array()}};
}

// GET /v1/models/{id}: the OpenAI SDK's models.retrieve. A served name may hold one '/'
// (vLLM's are often Hugging Face ids, "Qwen/Qwen2-7B").
void RetrieveModel(const core::InferenceService& service, const std::string& wanted, http::ResponseWriter& w) {
  for (const ServedModel& m : ServedModels(service)) {
    if (m.name == wanted) return (void)w.SendJson(200, ModelCard(m));
  }
  SendOpenAIError(w, NotFound("The model `" + wanted.substr(0, 256) + "` does not exist."));
}

}  // namespace

void SendOpenAIError(http::ResponseWriter& w, const Status& s) {
  const int code = http::HttpStatusFromCode(s.code());
  w.SendJson(code, ErrorBody(s.message(), code, s.param()));
}

void RegisterOpenAIRoutes(http::Router& router, core::InferenceService& service, const http::RequestLimits& limits) {
  // Every error the router answers itself under /v1 (unknown path, wrong method, access
  // refused) in OpenAI's shape, as the handlers' own.
  router.SetErrorRenderer("/v1/", [](int status, const std::string& message) { return ErrorBody(message, status).dump(); });
  router.Add("GET", "/v1/models", [&service](const http::HttpRequest&, std::shared_ptr<http::ResponseWriter> w) {
    json data = json::array();
    for (const ServedModel& m : ServedModels(service)) data.push_back(ModelCard(m));
    w->SendJson(200, json{{"object", "list"}, {"data", data}});
  });
  router.Add("GET", "/v1/models/{model}", [&service](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
    RetrieveModel(service, std::string(r.Param("model")), *w);
  });
  router.Add("GET", "/v1/models/{org}/{model}",
             [&service](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
               RetrieveModel(service, std::string(r.Param("org")) + "/" + std::string(r.Param("model")), *w);
             });
  router.Add("POST", "/v1/completions", [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
    HandleCompletion(service, limits, false, r, std::move(w));
  });
  router.Add("POST", "/v1/chat/completions",
             [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
               HandleCompletion(service, limits, true, r, std::move(w));
             });
  // vLLM's service routes beside the API: /health (200, empty, once every model that should
  // be is READY; 503 before and while shutting down), /version, /tokenize, /detokenize.
  router.Add("GET", "/health", [&service](const http::HttpRequest&, std::shared_ptr<http::ResponseWriter> w) {
    w->Send(service.IsReady() ? 200 : 503, "text/plain", "");
  });
  router.Add("GET", "/version", [](const http::HttpRequest&, std::shared_ptr<http::ResponseWriter> w) {
    w->SendJson(200, json{{"version", std::string(SluiceVersion())}});
  });
  RegisterTokenizeRoutes(router, service, limits);
}

}  // namespace sluice::openai

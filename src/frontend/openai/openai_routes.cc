#include "frontend/openai/openai_routes.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "common/llm_protocol.h"
#include "common/thread_annotations.h"
#include "common/version.h"
#include "frontend/http/http_status.h"
#include "frontend/http/json_util.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/served_models.h"
#include "frontend/openai/tokenize_routes.h"

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


const Tensor* Output(const InferResponse& r, std::string_view name) { return FindTensor(r.outputs, name); }

std::string BytesOutput(const InferResponse& r, std::string_view name) {
  const Tensor* t = Output(r, name);
  if (!t) return {};
  auto elems = SplitBytesElements(t->data);
  return elems.ok() && !elems->empty() ? std::string((*elems)[0]) : std::string();
}

// Characters (Unicode code points) of valid UTF-8 text: OpenAI's text_offset counts them, as
// the client's string does, not bytes.
size_t CodePoints(std::string_view s) {
  auto starts_a_character = [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; };
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), starts_a_character));
}

uint32_t Uint32Output(const InferResponse& r, std::string_view name) {
  const Tensor* t = Output(r, name);
  if (!t || t->data.size() < 4) return 0;
  uint32_t v;
  memcpy(&v, t->data.data(), 4);
  return v;
}

// One request (n choices) from the first event to the last. Thread-safe: the choices'
// events arrive on core threads.
class Completion : public std::enable_shared_from_this<Completion> {
 public:
  // `repository_model` answers to the request's model name (served_models.h).
  Completion(OpenAIRequest request, std::string repository_model, std::shared_ptr<http::ResponseWriter> writer)
      : r_(std::move(request)), repository_model_(std::move(repository_model)), writer_(std::move(writer)), id_(RandomId(r_.chat ? "chatcmpl" : "cmpl")),
        created_(NowSecs()), choices_(NumChoices(r_)) {
    if (r_.echo) {
      for (size_t i = 0; i < choices_.size(); ++i) {
        choices_[i].text_offset = CodePoints(PromptOf(r_, static_cast<int>(i)));
      }
    }
  }

  void Start(core::InferenceService& service) SLUICE_EXCLUDES(mu_) {
    if (r_.stream) writer_->StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    auto self = shared_from_this();
    writer_->OnDisconnect([self] { self->CancelAll(); });
    const int total = NumChoices(r_);
    for (int i = 0; i < total; ++i) {
      InferRequest request = BuildInferRequest(r_, i);
      request.model_name = repository_model_;
      auto handle = service.Infer(std::move(request), [self, i](ResponseEvent ev) { self->OnEvent(i, std::move(ev)); });
      if (!handle.ok()) {
        MutexLock lock(mu_);
        if (!failed_) failed_ = handle.status();
        choices_[i].done = true;
        if (++finished_ == total) FinishLocked();
        continue;
      }
      MutexLock lock(mu_);
      choices_[i].handle = std::move(handle).value();
    }
    if (writer_->Disconnected()) CancelAll();
  }

 private:
  struct Choice {
    std::shared_ptr<core::InflightRequest> handle;
    std::string text;
    std::string finish_reason;
    json logprobs = json::array();  // backend entries
    uint32_t prompt_tokens = 0, completion_tokens = 0;
    // Completions' logprobs: where the next token starts in the returned text (the echoed
    // prompt first), in characters; streamed chunks advance it.
    size_t text_offset = 0;
    bool role_sent = false;
    bool done = false;
  };

  void CancelAll() SLUICE_EXCLUDES(mu_) {
    std::vector<std::shared_ptr<core::InflightRequest>> handles;
    {
      MutexLock lock(mu_);
      for (auto& c : choices_)
        if (c.handle) handles.push_back(c.handle);
    }
    for (auto& h : handles) h->Cancel();
  }

  void OnEvent(int i, ResponseEvent ev) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    Choice& c = choices_[i];
    if (!ev.status.ok()) {
      if (!failed_) failed_ = ev.status;
    }
    if (ev.has_response) {
      const InferResponse& resp = ev.response;
      std::string delta = BytesOutput(resp, proto::kTextOutput);
      std::string finish = BytesOutput(resp, proto::kFinishReason);
      json lp = json::array();
      if (r_.logprobs) {
        lp = json::parse(BytesOutput(resp, proto::kLogprobs), nullptr, false);
        if (!lp.is_array()) lp = json::array();
      }
      c.prompt_tokens = std::max(c.prompt_tokens, Uint32Output(resp, proto::kNumInputTokens));
      // Per response when streamed (the vLLM backend's num_output_tokens), the total otherwise.
      c.completion_tokens += Uint32Output(resp, proto::kNumOutputTokens);
      if (!finish.empty()) c.finish_reason = finish == "abort" ? "stop" : finish;
      if (r_.stream && !failed_) WriteChunk(i, c, delta, lp);
      c.text += delta;
      for (auto& e : lp) c.logprobs.push_back(e);
    }
    if (ev.final) {
      c.done = true;
      if (++finished_ == static_cast<int>(choices_.size())) FinishLocked();
    }
  }

  json ChatLogprobs(const json& entries) const {
    json content = json::array();
    for (const auto& e : entries) {
      json top = json::array();
      for (const auto& t : e.value("top_logprobs", json::array()))
        top.push_back({{"token", t["token"]}, {"logprob", t["logprob"]}, {"bytes", t["bytes"]}});
      content.push_back({{"token", e["token"]}, {"logprob", e["logprob"]}, {"bytes", e["bytes"]}, {"top_logprobs", top}});
    }
    return json{{"content", content}};
  }

  // Advances text_offset past the entries' tokens.
  json CompletionLogprobs(const json& entries, size_t& text_offset) const {
    json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
    for (const auto& e : entries) {
      tokens.push_back(e["token"]);
      lps.push_back(e["logprob"]);
      json top = json::object();
      for (const auto& t : e.value("top_logprobs", json::array())) top[t["token"].get<std::string>()] = t["logprob"];
      tops.push_back(top);
      offsets.push_back(text_offset);
      text_offset += CodePoints(e["token"].get<std::string>());
    }
    return json{{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
  }

  json ChunkBase() const {
    return json{{"id", id_}, {"object", r_.chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created_}, {"model", r_.model}};
  }

  void WriteChunk(int i, Choice& c, const std::string& delta, const json& lp) SLUICE_REQUIRES(mu_) {
    json choice = {{"index", i}};
    if (r_.chat) {
      json d = json::object();
      if (!c.role_sent) {
        d["role"] = "assistant";
        c.role_sent = true;
      }
      if (!delta.empty() || d.contains("role")) d["content"] = delta;
      choice["delta"] = d;
      choice["logprobs"] = r_.logprobs ? ChatLogprobs(lp) : json(nullptr);
    } else {
      std::string text = delta;
      if (r_.echo && !c.role_sent) text = PromptOf(r_, i) + text;
      c.role_sent = true;
      choice["text"] = text;
      choice["logprobs"] = r_.logprobs ? CompletionLogprobs(lp, c.text_offset) : json(nullptr);
    }
    choice["finish_reason"] = c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason);
    json chunk = ChunkBase();
    chunk["choices"] = json::array({choice});
    if (r_.include_usage) chunk["usage"] = r_.continuous_usage ? Usage() : json(nullptr);
    writer_->WriteChunk("data: " + chunk.dump() + "\n\n");
  }

  // A prompt's tokens count once however many samples it has (n), as OpenAI and vLLM do.
  json Usage() const SLUICE_REQUIRES(mu_) {
    uint32_t prompt = 0, completion = 0;
    for (size_t first = 0; first < choices_.size(); first += r_.n) {
      uint32_t tokens = 0;
      for (size_t i = first; i < first + r_.n && i < choices_.size(); ++i) {
        tokens = std::max(tokens, choices_[i].prompt_tokens);
      }
      prompt += tokens;
    }
    for (const auto& c : choices_) completion += c.completion_tokens;
    return json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  void FinishLocked() SLUICE_REQUIRES(mu_) {
    if (r_.stream) {
      if (failed_) {
        int code = http::HttpStatusFromCode(failed_->code());
        writer_->WriteChunk("data: " + ErrorBody(failed_->message(), code).dump() + "\n\n");
      } else if (r_.include_usage) {
        json chunk = ChunkBase();
        chunk["choices"] = json::array();
        chunk["usage"] = Usage();
        writer_->WriteChunk("data: " + chunk.dump() + "\n\n");
      }
      writer_->WriteChunk("data: [DONE]\n\n");
      writer_->EndStream();
      return;
    }
    if (failed_) {
      SendOpenAIError(*writer_, *failed_);
      return;
    }
    json choices = json::array();
    for (size_t i = 0; i < choices_.size(); ++i) {
      const Choice& c = choices_[i];
      json choice = {{"index", i}, {"finish_reason", c.finish_reason.empty() ? "stop" : c.finish_reason}};
      if (r_.chat) {
        choice["message"] = {{"role", "assistant"}, {"content", c.text}};
        choice["logprobs"] = r_.logprobs ? ChatLogprobs(c.logprobs) : json(nullptr);
      } else {
        const std::string& prompt = PromptOf(r_, static_cast<int>(i));
        choice["text"] = r_.echo ? prompt + c.text : c.text;
        size_t text_offset = c.text_offset;
        choice["logprobs"] = r_.logprobs ? CompletionLogprobs(c.logprobs, text_offset) : json(nullptr);
      }
      choices.push_back(std::move(choice));
    }
    json body = {{"id", id_}, {"object", r_.chat ? "chat.completion" : "text_completion"}, {"created", created_},
                 {"model", r_.model}, {"choices", choices}, {"usage", Usage()}};
    writer_->SendJson(200, body);
  }

  const OpenAIRequest r_;
  const std::string repository_model_;
  const std::shared_ptr<http::ResponseWriter> writer_;
  const std::string id_;
  const int64_t created_;
  Mutex mu_;
  std::vector<Choice> choices_ SLUICE_GUARDED_BY(mu_);
  int finished_ SLUICE_GUARDED_BY(mu_) = 0;
  std::optional<Status> failed_ SLUICE_GUARDED_BY(mu_);
};

void HandleCompletion(core::InferenceService& service, const http::RequestLimits& limits, bool chat,
                      const http::HttpRequest& request, std::shared_ptr<http::ResponseWriter> writer) {
  auto body = http::ParseJsonBounded(request.body, limits.max_json_depth);
  if (!body.ok()) return SendOpenAIError(*writer, body.status());
  auto parsed = ParseOpenAIRequest(*body, chat);
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
  w.SendJson(code, ErrorBody(s.message(), code));
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

#include "backends/llm/backend/llm_backend.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "backends/llm/backend/engine_args.h"
#include "backends/llm/backend/engine_setup.h"
#include "backends/llm/backend/llm_request.h"
#include "backends/llm/backend/llm_response.h"
#include "backends/llm/backend/prompt_pool.h"
#include "backends/llm/backend/reasoning_parser.h"
#include "backends/llm/backend/tool_calling.h"
#include "backends/llm/chat_template/chat_template.h"
#include "backends/llm/engine/engine.h"
#include "backends/llm/model/model_loader.h"
#include "backends/llm/tokenizer/tokenizer.h"
#include "common/llm_contract.h"
#include "common/thread_annotations.h"

namespace sluice::llm {
namespace {

Result<std::string> ReadSmallFile(const std::filesystem::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(what + " is missing");
  std::ostringstream s;
  s << in.rdbuf();
  if (s.str().size() > (1u << 20)) return InvalidArgument(what + " is larger than 1 MiB");
  return s.str();
}

// One request in flight: what it asked for and what has been produced (non-streaming
// requests send everything at the end).
struct Pending {
  llm_contract::LlmRequest request;
  std::shared_ptr<backends::ResponseSender> sender;
  std::string prompt_text;
  int32_t num_prompt_tokens = 0;
  std::map<int32_t, std::string> text;  // per sequence index
  std::map<int32_t, std::vector<llm_contract::PositionLogprobs>> logprobs;
  std::map<int32_t, double> cumulative;
  std::map<int32_t, int32_t> num_output;
  std::map<int32_t, std::string> finish;
  std::unique_ptr<RequestToolCalling> tool_calls;  // null: no tool calls are parsed
  // Chat outputs with the model's reasoning parser: each sequence's split, as it streams.
  std::map<int32_t, ReasoningStream> reasoning;
};

// Workers that prepare prompts off the stub's IPC thread (prompt_pool.h): a quarter of the
// cores, 1 to 4. A 4,000-token prompt takes ~1-2 ms to tokenize (Qwen's tokenizer, one core):
// 32 such requests arriving together wait up to ~35-70 ms behind each other on one thread.
int PromptThreads() {
  return std::clamp(static_cast<int>(std::thread::hardware_concurrency()) / 4, 1, 4);
}

// A generation request ready for the engine: what Start prepared, for Prepare's admission.
struct Admission {
  std::shared_ptr<Pending> pending;
  EngineRequest request;
};

double MillisSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// The Cancelled error every cancelled request ends with.
Status RequestCancelled() {
  return Cancelled("Request was cancelled");
}

class LlmBackend final : public backends::Backend {
 public:
  // A tokenize request may hold this many contexts' worth of tokens (its count may exceed the
  // context, as vLLM's /tokenize reports it; the bound keeps one request's work finite).
  static constexpr size_t kTokenizeContexts = 8;

  Status Initialize(const InstanceSpec& ctx) override {
    const auto load_start = std::chrono::steady_clock::now();
    model_name_ = ctx.model_name;
    engine_index_ = ctx.instance_index;
    const std::filesystem::path version_dir(ctx.version_dir);
    ASSIGN_OR_RETURN(std::string model_json, ReadSmallFile(version_dir / "model.json", "model.json"));
    ASSIGN_OR_RETURN(EngineArgs args, ParseEngineArgs(model_json));
    if (!args.unused.empty()) {
      std::string names;
      for (const auto& n : args.unused) names += (names.empty() ? "" : ", ") + n;
      spdlog::warn("model '{}': engine arguments not used by Sluice: {}", model_name_, names);
    }
    ASSIGN_OR_RETURN(auto folder, ResolveModelFolder(args, ctx.model_dir, version_dir));
    ASSIGN_OR_RETURN(auto tokenizer_folder, ResolveTokenizerFolder(args, ctx.model_dir, version_dir, folder));
    RETURN_IF_ERROR(LoadTokenizer(tokenizer_folder));
    RETURN_IF_ERROR(ConfigureOutputParsers(args));
    ASSIGN_OR_RETURN(ModelLoadOptions load, ModelLoadOptionsFor(args, ctx, model_name_));
    const double tokenizer_ms = MillisSince(load_start);
    ASSIGN_OR_RETURN(auto model, LoadModel(folder, load));
    const LoadPhaseTimings phases = model->load_timings();
    const auto engine_start = std::chrono::steady_clock::now();
    LogKvCache(model_name_, *model, args);
    EngineOptions options = EngineOptionsFor(args, *model, *tokenizer_, model_name_);
    ASSIGN_OR_RETURN(engine_, Engine::Create(std::move(model), std::move(options)));
    prompts_ = PromptPool::Create(PromptThreads());
    // The load's phases (issue 20): where a slow start went.
    spdlog::info(
        "model '{}': ready in {:.0f} ms (max_model_len {}): tokenizer {:.0f} ms, mmap {:.0f} ms, "
        "weights {:.0f} ms, "
        "KV cache sizing {:.0f} ms, graph capture {:.0f} ms, engine {:.0f} ms",
        model_name_, MillisSince(load_start), engine_->max_model_len(), tokenizer_ms,
        phases.open_ms, phases.weights_ms, phases.kv_cache_ms, phases.graphs_ms,
        MillisSince(engine_start));
    return Status::Ok();
  }

  // On the stub's IPC thread: only queues the request for a prompt worker (Prepare).
  void Execute(backends::BackendRequest br) override {
    const uint64_t id = br.id;
    auto sender = br.sender;
    {
      MutexLock lock(mu_);
      preparing_[id] = sender;
    }
    // Shared: std::function copies its target.
    auto request = std::make_shared<backends::BackendRequest>(std::move(br));
    if (prompts_->Post(id, [this, request] { return Prepare(std::move(*request)); })) return;
    {
      MutexLock lock(mu_);
      preparing_.erase(id);
    }
    (void)sender->SendError(Unavailable("model instance is shutting down"));
  }

  // On the stub's IPC thread. A request still waiting for a prompt worker ends here and now; one
  // being prepared ends at its admission (the sender says it is cancelled); one in the engine is
  // aborted there and ends with its last output.
  void Cancel(uint64_t id) override {
    std::shared_ptr<backends::ResponseSender> withdrawn;
    {
      MutexLock lock(mu_);
      if (auto it = preparing_.find(id); it != preparing_.end()) {
        if (!prompts_->Withdraw(id)) return;
        withdrawn = std::move(it->second);
        preparing_.erase(it);
      } else {
        if (!pending_.count(id)) return;
        cancelled_.insert(id);
      }
    }
    if (withdrawn) {
      (void)withdrawn->SendError(RequestCancelled());
      return;
    }
    engine_->Abort(std::to_string(id));
  }

  // Teardown order: the prompt workers first (queued requests end Unavailable, the ones being
  // prepared are admitted), then the engine (which ends every request it holds).
  void Finalize() override {
    if (prompts_) {
      for (uint64_t id : prompts_->Stop()) {
        std::shared_ptr<backends::ResponseSender> sender;
        {
          MutexLock lock(mu_);
          auto it = preparing_.find(id);
          if (it == preparing_.end()) continue;
          sender = std::move(it->second);
          preparing_.erase(it);
        }
        (void)sender->SendError(Unavailable("model instance is shutting down"));
      }
    }
    if (engine_) engine_->Stop();
    engine_.reset();
    MutexLock lock(mu_);
    pending_.clear();
  }

  // The engine reports a request started when it first schedules it (leaves its queue).
  bool ReportsRequestStart() const override { return true; }

  std::vector<MetricFamily> Metrics() const override {
    if (!engine_) return {};
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    return VllmMetricFamilies(model_name_, engine_index_, engine_->Metrics(), now);
  }

 private:
  // The tokenizer and its chat template (tokenizer_config.json, when there is one).
  Status LoadTokenizer(const std::filesystem::path& folder) {
    ASSIGN_OR_RETURN(tokenizer_,
                     Tokenizer::FromFile((folder / "tokenizer.json").string(),
                                         std::filesystem::exists(folder / "tokenizer_config.json")
                                             ? (folder / "tokenizer_config.json").string()
                                             : std::string()));
    if (!tokenizer_->chat_template().empty()) {
      auto parsed = ChatTemplate::Parse(tokenizer_->chat_template());
      if (!parsed.ok())
        return parsed.status().WithPrefix("chat template of model '" + model_name_ + "'");
      chat_template_ = std::move(parsed).value();
    }
    return Status::Ok();
  }

  // How outputs are read: tool calls (model.json's parser, else the chat template's format)
  // and, with a reasoning parser, reasoning.
  Status ConfigureOutputParsers(const EngineArgs& args) {
    ASSIGN_OR_RETURN(tool_calling_,
                     ResolveModelToolCalling(args.tool_call_parser, args.enable_auto_tool_choice,
                                             tokenizer_->chat_template()));
    if (tool_calling_.format) {
      spdlog::info("model '{}': tool calls read in the {} format ({}){}", model_name_,
                   ToolCallFormatName(*tool_calling_.format),
                   args.tool_call_parser ? "model.json" : "detected from the chat template",
                   tool_calling_.auto_tool_choice ? "" : "; tool_choice \"auto\" is off");
    }
    if (!args.reasoning_parser.empty()) {
      ASSIGN_OR_RETURN(ReasoningParser parser, ReasoningParser::Create(args.reasoning_parser));
      reasoning_parser_ = parser;
    }
    structured_output_in_reasoning_ = args.structured_output_in_reasoning;
    return Status::Ok();
  }

  // On a prompt worker: parse, template and tokenize (Start); what it returns runs in arrival
  // order and hands the request to the engine, or ends it.
  PromptPool::Admit Prepare(backends::BackendRequest br) {
    const uint64_t id = br.id;
    auto sender = br.sender;
    auto admission = std::make_shared<std::optional<Admission>>();
    // A request cancelled while it waited is not worth tokenizing.
    Status status =
        sender->IsCancelled() ? RequestCancelled() : Start(std::move(br), admission.get());
    return [this, id, sender, status, admission] {
      Status result = status;
      {
        // One critical section: a Cancel finds the request in preparing_ or in pending_.
        MutexLock lock(mu_);
        preparing_.erase(id);
        if (result.ok() && sender->IsCancelled()) {
          result = RequestCancelled();
        } else if (result.ok() && admission->has_value()) {
          result = AdmitLocked(id, std::move(**admission));
        }
      }
      if (!result.ok()) (void)sender->SendError(result);
    };
  }

  // Hands a prepared request to the engine (its outputs come to OnOutput).
  Status AdmitLocked(uint64_t id, Admission admission) SLUICE_REQUIRES(mu_) {
    pending_[id] = admission.pending;
    Status added = engine_->AddRequest(std::move(admission.request));
    if (!added.ok()) pending_.erase(id);
    return added;
  }

  // Everything before the engine; a request for the engine leaves in `admission` what it needs.
  Status Start(backends::BackendRequest br, std::optional<Admission>* admission) {
    ASSIGN_OR_RETURN(llm_contract::LlmRequest req, ParseLlmRequest(br.request));
    using Kind = llm_contract::Prompt::Kind;
    using Task = llm_contract::Task;
    std::string prompt = req.prompt.text;
    nlohmann::ordered_json template_kwargs = nlohmann::ordered_json::object();
    if (req.prompt.kind == Kind::kChat) {
      ASSIGN_OR_RETURN(prompt, RenderChat(req, &template_kwargs));
    }
    // The constraint and output parser of tool_choice (generations only).
    std::unique_ptr<RequestToolCalling> tool_calls;
    if (req.task == Task::kGenerate) {
      ASSIGN_OR_RETURN(tool_calls, RequestToolCalling::Create(req, tool_calling_, model_name_));
    }
    if (req.task == Task::kDetokenize) {
      if (req.prompt.kind != Kind::kTokenIds)
        return InvalidArgument("detokenize needs a prompt of token ids");
      return Detokenize(req.prompt.token_ids, *br.sender);
    }
    ASSIGN_OR_RETURN(std::vector<int32_t> ids, PromptIds(req, &prompt));
    if (req.task == Task::kTokenize) {
      llm_contract::LlmOutput out;
      out.token_ids = std::move(ids);
      out.max_model_len = static_cast<uint32_t>(engine_->max_model_len());
      return SendTyped(out, *br.sender);
    }
    if (ids.empty()) return InvalidArgument("the prompt is empty");
    RETURN_IF_ERROR(CheckContext(req, ids.size()));
    const uint64_t id = br.id;
    auto pending = std::make_shared<Pending>();
    pending->request = req;
    pending->sender = br.sender;
    pending->prompt_text = req.output.exclude_input_in_output ? "" : prompt;
    pending->num_prompt_tokens = static_cast<int32_t>(ids.size());
    pending->tool_calls = std::move(tool_calls);
    EngineRequest er;
    er.request_id = std::to_string(id);
    er.prompt_token_ids = std::move(ids);
    er.params = ToEngineSampling(req.sampling);
    if (reasoning_parser_) StartReasoning(req, prompt, template_kwargs, *pending, er);
    // Compiled here, on a prompt worker, beside other requests' compiles and the engine's steps.
    RETURN_IF_ERROR(engine_->PrepareStructuredOutput(er));
    er.on_output = [this, id](RequestOutput out) { OnOutput(id, std::move(out)); };
    er.on_started = [sender = std::weak_ptr<backends::ResponseSender>(pending->sender)] {
      if (auto s = sender.lock()) s->ReportStarted();
    };
    admission->emplace(Admission{std::move(pending), std::move(er)});
    return Status::Ok();
  }

  // A chat prompt rendered by the model's template, as transformers' apply_chat_template does;
  // the client's chat_template_kwargs in *kwargs (the reasoning parser reads them too).
  Result<std::string> RenderChat(const llm_contract::LlmRequest& req,
                                 nlohmann::ordered_json* kwargs) const {
    if (!chat_template_) return InvalidArgument("model '" + model_name_ + "' has no chat template");
    ASSIGN_OR_RETURN(*kwargs, TemplateKwargs(req.prompt));
    // The client's kwargs over the special tokens.
    nlohmann::ordered_json extra = {{"bos_token", tokenizer_->bos_token()},
                                    {"eos_token", tokenizer_->eos_token()}};
    if (!req.tools.empty()) {
      ASSIGN_OR_RETURN(extra["tools"], TemplateTools(req.tools));
    }
    for (const auto& [key, value] : kwargs->items()) extra[key] = value;
    return chat_template_->Render(TemplateMessages(req.prompt.messages),
                                  req.prompt.add_generation_prompt, extra);
  }

  // The prompt's token ids: the client's own (their text to *prompt, unless excluded from the
  // output), or *prompt tokenized within the context.
  Result<std::vector<int32_t>> PromptIds(const llm_contract::LlmRequest& req,
                                         std::string* prompt) const {
    const bool chat = req.prompt.kind == llm_contract::Prompt::Kind::kChat;
    if (req.prompt.kind == llm_contract::Prompt::Kind::kTokenIds) {
      // The engine checks the ids against the vocabulary and the context.
      if (!req.output.exclude_input_in_output)
        *prompt = tokenizer_->Decode(req.prompt.token_ids, /*skip_special_tokens=*/false);
      return req.prompt.token_ids;
    }
    if (req.task == llm_contract::Task::kTokenize) {
      // The prompt's ids even past the context (vLLM's /tokenize counts them), within a bound.
      return tokenizer_->EncodeBounded(
          *prompt, req.add_special_tokens.value_or(!chat),
          kTokenizeContexts * static_cast<size_t>(engine_->max_model_len()));
    }
    // A chat template writes the special tokens itself.
    return tokenizer_->EncodeBounded(*prompt, /*add_special_tokens=*/!chat,
                                     static_cast<size_t>(engine_->max_model_len()));
  }

  // A prompt of `num_prompt_tokens` and max_tokens must fit the context (when the frontend asks).
  Status CheckContext(const llm_contract::LlmRequest& req, size_t num_prompt_tokens) const {
    const int64_t context = engine_->max_model_len();
    if (req.output.check_context && req.sampling.max_tokens.has_value() &&
        static_cast<int64_t>(num_prompt_tokens) + *req.sampling.max_tokens > context) {
      // vLLM's OpenAI server's words (it says "messages" for completions too).
      const int64_t want = static_cast<int64_t>(num_prompt_tokens) + *req.sampling.max_tokens;
      return InvalidArgument("This model's maximum context length is " + std::to_string(context) +
                             " tokens. However, you requested " + std::to_string(want) +
                             " tokens (" + std::to_string(num_prompt_tokens) +
                             " in the messages, " + std::to_string(*req.sampling.max_tokens) +
                             " in the completion). Please reduce the length of the messages or "
                             "completion.");
    }
    return Status::Ok();
  }

  // With a reasoning parser (reasoning_parser.h): a chat output's split into reasoning and
  // content, and, as vLLM's engine does for every request, structured output that waits for the
  // reasoning's end unless the prompt ended it (or enable_in_reasoning).
  void StartReasoning(const llm_contract::LlmRequest& req, const std::string& prompt,
                      const nlohmann::ordered_json& template_kwargs, Pending& pending,
                      EngineRequest& er) const {
    using Kind = llm_contract::Prompt::Kind;
    const bool split = req.prompt.kind == Kind::kChat && req.output.typed_responses;
    bool in_reasoning = false;
    if (split) {
      const ReasoningStream stream = reasoning_parser_->Start(prompt, template_kwargs);
      for (int32_t i = 0; i < req.sampling.n; ++i) pending.reasoning.emplace(i, stream);
      in_reasoning = stream.has_reasoning();
    }
    if (!er.params.structured_output || structured_output_in_reasoning_) return;
    if (!split) {
      in_reasoning = !PromptEndsReasoning(req.prompt.kind == Kind::kTokenIds
                                              ? tokenizer_->Decode(er.prompt_token_ids, false)
                                              : prompt);
    }
    if (in_reasoning) er.grammar_after = std::string(reasoning_parser_->end_tag());
  }

  // vLLM's /detokenize: the ids' text, special tokens kept.
  Status Detokenize(const std::vector<int32_t>& ids, backends::ResponseSender& sender) {
    for (int32_t id : ids) {
      if (id >= tokenizer_->vocab_size()) {
        return InvalidArgument("token id " + std::to_string(id) + " is outside the vocabulary of model '" +
                               model_name_ + "' (" + std::to_string(tokenizer_->vocab_size()) + " tokens)");
      }
    }
    llm_contract::LlmOutput out;
    out.text = tokenizer_->Decode(ids, /*skip_special_tokens=*/false);
    return SendTyped(out, sender);
  }

  // One typed response, the request's last.
  static Status SendTyped(const llm_contract::LlmOutput& out, backends::ResponseSender& sender) {
    InferResponse resp;
    ASSIGN_OR_RETURN(Tensor t, LlmOutputTensor(out));
    resp.outputs.push_back(std::move(t));
    (void)sender.Send(std::move(resp), true);  // a failed send has no one to tell
    return Status::Ok();
  }

  // On the engine thread.
  void OnOutput(uint64_t id, RequestOutput out) {
    std::shared_ptr<Pending> p;
    bool cancelled = false;
    {
      MutexLock lock(mu_);
      auto it = pending_.find(id);
      if (it == pending_.end()) return;
      p = it->second;
      if (out.finished) {
        pending_.erase(it);
        cancelled = cancelled_.erase(id) > 0;
      }
    }
    if (out.finished && cancelled) {
      (void)p->sender->SendError(Cancelled("Request was cancelled"));
      return;
    }
    if (out.finished && !out.error.ok()) {
      (void)p->sender->SendError(out.error);
      return;
    }
    if (p->request.output.typed_responses) return SendTypedStep(*p, out);
    if (p->request.output.stream) return SendTritonStep(*p, out);
    Accumulate(*p, out);
    if (out.finished) SendTritonFinal(*p);
  }

  // Sluice's own requests: one typed response per sequence's news, always streamed (the
  // frontend assembles); the last carries the final flag.
  void SendTypedStep(Pending& p, const RequestOutput& out) {
    const bool logprobs = p.request.sampling.logprobs.has_value();
    for (size_t k = 0; k < out.seqs.size(); ++k) {
      llm_contract::LlmOutput typed =
          TypedOutput(*tokenizer_, out.seqs[k], p.num_prompt_tokens, logprobs);
      // The output's parsers in vLLM's order: the reasoning parser's (when the model has one)
      // first, then the tool calls read out of the content it leaves in typed.text.
      if (auto it = p.reasoning.find(typed.index); it != p.reasoning.end())
        SplitReasoning(it->second, typed);
      if (p.tool_calls) p.tool_calls->Parse(typed, out.seqs[k].finished());
      auto tensor = LlmOutputTensor(typed);
      if (!tensor.ok()) {
        (void)p.sender->SendError(tensor.status());
        return;
      }
      InferResponse resp;
      resp.outputs.push_back(std::move(tensor).value());
      (void)p.sender->Send(std::move(resp), out.finished && k + 1 == out.seqs.size());
    }
    if (out.finished && out.seqs.empty()) (void)p.sender->SendFinal();
  }

  // As Triton's vLLM backend, the last delta carries the final flag (a client that did not
  // ask for empty final responses still sees triton_final_response=true).
  void SendTritonStep(Pending& p, const RequestOutput& out) {
    const llm_contract::LlmRequest& r = p.request;
    for (size_t k = 0; k < out.seqs.size(); ++k) {
      const auto& s = out.seqs[k];
      TritonRows row;
      row.texts = {s.text};
      row.finishes = {
          std::string(llm_contract::FinishReasonName(ContractFinishReason(s.finish_reason)))};
      row.cumulative = {static_cast<float>(s.cumulative_logprob)};
      row.num_output = {static_cast<uint32_t>(s.token_ids.size())};
      row.logprobs = {
          r.output.return_logprobs ? TritonLogprobsJson(PositionLogprobsOf(*tokenizer_, s)) : "[]"};
      InferResponse resp;
      resp.outputs = TritonOutputs(r.output, row, static_cast<uint32_t>(p.num_prompt_tokens));
      if (r.sampling.n > 1) resp.parameters["index"] = static_cast<int64_t>(s.index);
      (void)p.sender->Send(std::move(resp), out.finished && k + 1 == out.seqs.size());
    }
    if (out.finished && out.seqs.empty()) (void)p.sender->SendFinal();
  }

  // Non-streaming Triton requests: everything is sent at the end.
  void Accumulate(Pending& p, const RequestOutput& out) {
    for (const auto& s : out.seqs) {
      p.text[s.index] += s.text;
      p.cumulative[s.index] = s.cumulative_logprob;
      p.num_output[s.index] = s.num_output_tokens;
      if (s.finished()) {
        p.finish[s.index] =
            std::string(llm_contract::FinishReasonName(ContractFinishReason(s.finish_reason)));
      }
      if (p.request.output.return_logprobs) {
        auto positions = PositionLogprobsOf(*tokenizer_, s);
        auto& all = p.logprobs[s.index];
        all.insert(all.end(), positions.begin(), positions.end());
      }
    }
  }

  // One response with a row per sequence.
  void SendTritonFinal(Pending& p) {
    TritonRows rows;
    for (int32_t i = 0; i < p.request.sampling.n; ++i) {
      rows.texts.push_back(p.prompt_text + p.text[i]);
      rows.finishes.push_back(p.finish[i]);
      rows.cumulative.push_back(static_cast<float>(p.cumulative[i]));
      rows.num_output.push_back(static_cast<uint32_t>(p.num_output[i]));
      rows.logprobs.push_back(TritonLogprobsJson(p.logprobs[i]));
    }
    InferResponse resp;
    resp.outputs =
        TritonOutputs(p.request.output, rows, static_cast<uint32_t>(p.num_prompt_tokens));
    (void)p.sender->Send(std::move(resp), true);
  }

  std::string model_name_;
  int engine_index_ = 0;  // the instance index: vLLM's `engine` label
  std::unique_ptr<Tokenizer> tokenizer_;          // constant after Initialize
  std::unique_ptr<ChatTemplate> chat_template_;   // constant after Initialize; may be null
  ModelToolCalling tool_calling_;                 // constant after Initialize
  std::optional<ReasoningParser> reasoning_parser_;  // constant after Initialize
  bool structured_output_in_reasoning_ = false;      // constant after Initialize
  std::unique_ptr<Engine> engine_;                // Finalize stops it before the rest goes
  std::unique_ptr<PromptPool> prompts_;           // set by Initialize; stopped before the engine
  Mutex mu_;  // taken before the prompt pool's and the engine's locks
  // Requests queued or being prepared by a prompt worker, not yet in the engine.
  std::map<uint64_t, std::shared_ptr<backends::ResponseSender>> preparing_ SLUICE_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<Pending>> pending_ SLUICE_GUARDED_BY(mu_);
  std::set<uint64_t> cancelled_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<backends::Backend> MakeLlmBackend() {
  return std::make_unique<LlmBackend>();
}

}  // namespace sluice::llm

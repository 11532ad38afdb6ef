#include "frontend/openai/openai_request.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>

#include "common/json_fields.h"
#include "common/json_numerals.h"
#include "common/llm_protocol.h"
#include "common/structured_output_fields.h"
#include "common/tool_contract.h"
#include "frontend/openai/tool_fields.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::openai {
namespace {

namespace proto = llm_protocol;
namespace jf = json_fields;
using jf::FieldError;
using jf::Has;
using llm_contract::Surface;
using nlohmann::json;

constexpr int64_t kMaxPrompts = 256;   // prompts in one completions request
constexpr int64_t kMaxChoices = 1024;  // prompts x n
// Seeds of the choices are seed + index: the range leaves room for the index.
constexpr int64_t kMinSeed = INT64_MIN / 2, kMaxSeed = INT64_MAX / 2;

// A number in the contract's range of `name` (the OpenAI API's bounds), read from `field`.
Result<double> RangedNumber(const json& body, const char* field, std::string_view name) {
  ASSIGN_OR_RETURN(double x, jf::Number(body[field], field));
  RETURN_IF_ERROR(llm_contract::CheckSamplingRange(name, x, Surface::kOpenAI, field));
  return x;
}

Result<int32_t> RangedInteger(const json& body, const char* field, std::string_view name) {
  ASSIGN_OR_RETURN(int64_t x, jf::Integer(body[field], field));
  RETURN_IF_ERROR(
      llm_contract::CheckSamplingRange(name, static_cast<double>(x), Surface::kOpenAI, field));
  return static_cast<int32_t>(x);
}

// One token-id prompt: a non-empty list of ids in [0, 2^31). The model checks them against
// its vocabulary and context.
bool TokenIds(const json& ids, std::vector<int32_t>& out) {
  if (!ids.is_array() || ids.empty()) return false;
  for (const json& id : ids) {
    if (!jf::IsTokenId(id)) return false;
    out.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return true;
}

// Completions' `prompt`: a string, a batch of strings, token ids ([1, 2]) or a batch of them
// ([[1, 2], [3]]).
Status ParsePrompts(const json& p, OpenAIRequest& r) {
  if (p.is_string()) {
    r.prompts.push_back(p);
    return Status::Ok();
  }
  if (!p.is_array() || p.empty())
    return FieldError("prompt", "must be a string, a list of strings, or token ids");
  const bool strings = std::all_of(p.begin(), p.end(), [](const json& x) { return x.is_string(); });
  const bool batch = p[0].is_array();  // of token-id prompts
  if (!strings && !batch && !p[0].is_number_integer()) {
    return FieldError("prompt", "must be a string, a list of strings, or token ids");
  }
  if ((strings || batch) && p.size() > static_cast<size_t>(kMaxPrompts)) {
    return FieldError("prompt", "has more than " + std::to_string(kMaxPrompts) + " prompts");
  }
  if (strings) {
    for (const json& x : p) r.prompts.push_back(x);
    return Status::Ok();
  }
  for (size_t i = 0; i < (batch ? p.size() : 1); ++i) {
    r.token_prompts.emplace_back();
    if (!TokenIds(batch ? p[i] : p, r.token_prompts.back())) {
      return FieldError("prompt", "token-id prompts must be non-empty lists of token ids");
    }
  }
  return Status::Ok();
}

// Completions: prompt, echo, suffix.
Status ParseCompletionPrompt(const json& body, OpenAIRequest& r) {
  if (!body.contains("prompt")) return FieldError("prompt", "is required");
  RETURN_IF_ERROR(ParsePrompts(body["prompt"], r));
  if (Has(body, "echo")) {
    ASSIGN_OR_RETURN(r.echo, jf::Boolean(body["echo"], "echo"));
  }
  if (r.echo && !r.token_prompts.empty())
    return Unsupported("'echo' with token-id prompts is not supported");
  if (Has(body, "tools") && !(body["tools"].is_array() && body["tools"].empty()))
    return Unsupported("'tools' is not supported by completions (use chat completions)");
  if (Has(body, "suffix")) return Unsupported("'suffix' is not supported");
  return Status::Ok();
}

// n, stream and stream_options (include_usage, vLLM's continuous_usage_stats).
Status ParseChoicesAndStreaming(const json& body, OpenAIRequest& r) {
  if (Has(body, "n")) {
    ASSIGN_OR_RETURN(r.n, RangedInteger(body, "n", "n"));
  }
  if (!r.chat &&
      (r.prompts.size() + r.token_prompts.size()) * r.n > static_cast<size_t>(kMaxChoices)) {
    return FieldError("n",
                      "times the prompts is more than " + std::to_string(kMaxChoices) + " choices");
  }
  if (Has(body, "stream")) {
    ASSIGN_OR_RETURN(r.stream, jf::Boolean(body["stream"], "stream"));
  }
  if (!Has(body, "stream_options")) return Status::Ok();
  const json& options = body["stream_options"];
  if (!options.is_object()) return FieldError("stream_options", "must be an object");
  if (!r.stream) return FieldError("stream_options", "is only allowed when 'stream' is true");
  auto usage = jf::OptionalBoolean(options, "include_usage");
  if (!usage.ok()) return FieldError("stream_options", "'include_usage' must be a boolean");
  r.include_usage = usage->value_or(false);
  // vLLM's extension: usage (so far) in every chunk, not only in the last one.
  auto continuous = jf::OptionalBoolean(options, "continuous_usage_stats");
  if (!continuous.ok())
    return FieldError("stream_options", "'continuous_usage_stats' must be a boolean");
  r.continuous_usage = r.include_usage && continuous->value_or(false);
  return Status::Ok();
}

// The numeric sampling parameters (OpenAI's and vLLM's extensions), each against the
// contract's range table.
Status ParseSamplingNumbers(const json& body, bool chat, llm_contract::SamplingParameters& s) {
  const char* max_key = Has(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (Has(body, max_key)) {
    ASSIGN_OR_RETURN(s.max_tokens, RangedInteger(body, max_key, "max_tokens"));
  } else if (chat) {
    s.max_tokens.reset();  // up to the context, as OpenAI and vLLM do for chat
  }
  struct Real {
    const char* name;
    double* out;
  };
  for (const Real& f : {Real{"temperature", &s.temperature}, Real{"top_p", &s.top_p},
                        Real{"min_p", &s.min_p}, Real{"presence_penalty", &s.presence_penalty},
                        Real{"frequency_penalty", &s.frequency_penalty},
                        Real{"repetition_penalty", &s.repetition_penalty}}) {
    if (Has(body, f.name)) {
      ASSIGN_OR_RETURN(*f.out, RangedNumber(body, f.name, f.name));
    }
  }
  if (Has(body, "top_k")) {
    ASSIGN_OR_RETURN(s.top_k, RangedInteger(body, "top_k", "top_k"));
  }
  if (Has(body, "min_tokens")) {
    ASSIGN_OR_RETURN(s.min_tokens, RangedInteger(body, "min_tokens", "min_tokens"));
  }
  if (Has(body, "seed")) {
    if (!jf::IntegerIn(body["seed"], kMinSeed, kMaxSeed)) {
      return body["seed"].is_number_integer()
                 ? FieldError("seed", "must be between " + std::to_string(kMinSeed) + " and " +
                                          std::to_string(kMaxSeed))
                 : FieldError("seed", "must be an integer");
    }
    s.seed = body["seed"].get<int64_t>();
  }
  return Status::Ok();
}

// Booleans, stop strings, stop_token_ids and logit_bias.
Status ParseSamplingLists(const json& body, llm_contract::SamplingParameters& s) {
  for (auto [name, out] : {std::pair<const char*, bool*>{"ignore_eos", &s.ignore_eos},
                           {"skip_special_tokens", &s.skip_special_tokens},
                           {"include_stop_str_in_output", &s.include_stop_str_in_output}}) {
    if (Has(body, name)) {
      ASSIGN_OR_RETURN(*out, jf::Boolean(body[name], name));
    }
  }
  if (Has(body, "stop_token_ids")) {
    const json& ids = body["stop_token_ids"];
    if (!ids.is_array() || !std::all_of(ids.begin(), ids.end(), jf::IsTokenId)) {
      return FieldError("stop_token_ids", "must be a list of token ids");
    }
    for (const json& id : ids)
      s.stop_token_ids.push_back(id.get<int32_t>());  // the model checks the vocabulary
  }
  if (Has(body, "logit_bias")) {
    // {"token id": bias in [-100, 100]}; the model checks the ids against its vocabulary.
    const json& bias = body["logit_bias"];
    if (!bias.is_object())
      return FieldError("logit_bias", "must be an object of token ids to biases");
    std::map<int32_t, double> biases;
    for (const auto& [id, b] : bias.items()) {
      char* end = nullptr;
      const long long t = std::strtoll(id.c_str(), &end, 10);
      if (id.empty() || end != id.c_str() + id.size() || t < 0 || t > INT32_MAX) {
        return FieldError("logit_bias", "keys must be token ids, got \"" + id.substr(0, 32) + "\"");
      }
      if (!b.is_number())
        return FieldError("logit_bias", "biases must be numbers between -100 and 100");
      // "7" and "07" name one token: the last wins.
      biases[static_cast<int32_t>(t)] = b.get<double>();
    }
    s.logit_bias.assign(biases.begin(), biases.end());
  }
  if (Has(body, "stop")) {
    const json& stop = body["stop"];
    const bool list =
        stop.is_array() && stop.size() <= 4 &&
        std::all_of(stop.begin(), stop.end(), [](const json& x) { return x.is_string(); });
    if (!stop.is_string() && !list)
      return FieldError("stop", "must be a string or a list of up to 4 strings");
    if (stop.is_string()) s.stop.push_back(stop);
    if (list) s.stop.assign(stop.begin(), stop.end());
  }
  return Status::Ok();
}

// Chat: logprobs (a boolean) and top_logprobs; completions: logprobs (how many).
Status ParseLogprobs(const json& body, bool chat, llm_contract::SamplingParameters& s) {
  if (!chat) {
    if (Has(body, "logprobs")) {
      ASSIGN_OR_RETURN(s.logprobs, RangedInteger(body, "logprobs", "logprobs"));
    }
    return Status::Ok();
  }
  if (Has(body, "logprobs")) {
    ASSIGN_OR_RETURN(bool wanted, jf::Boolean(body["logprobs"], "logprobs"));
    if (wanted) s.logprobs = 0;
  }
  if (Has(body, "top_logprobs")) {
    ASSIGN_OR_RETURN(int32_t k, RangedInteger(body, "top_logprobs", "logprobs"));
    if (!s.logprobs) return FieldError("top_logprobs", "needs 'logprobs': true");
    s.logprobs = k;
  }
  return Status::Ok();
}

// What Sluice cannot honour is refused (501) rather than ignored: each changes what the
// client gets back. Empty lists and objects ask for nothing and pass.
Status RefuseWhatCannotBeHonoured(const json& body, int n) {
  auto asks = [&](const char* k) {
    return Has(body, k) && !((body[k].is_array() || body[k].is_object()) && body[k].empty());
  };
  for (const char* k :
       {"prompt_logprobs", "allowed_token_ids", "bad_words", "guided_whitespace_pattern"}) {
    if (asks(k)) return Unsupported("'" + std::string(k) + "' is not supported");
  }
  // OpenAI's deprecated function calling: tools and tool_choice say it now.
  for (const char* k : {"functions", "function_call"}) {
    if (asks(k)) return Unsupported("'" + std::string(k) + "' is not supported (use 'tools')");
  }
  if (Has(body, "use_beam_search") && body["use_beam_search"] != false) {
    return Unsupported("'use_beam_search' is not supported");
  }
  if (Has(body, "best_of")) {
    ASSIGN_OR_RETURN(int64_t best_of, jf::Integer(body["best_of"], "best_of"));
    RETURN_IF_ERROR(llm_contract::CheckBestOf(best_of, n));
  }
  return Status::Ok();
}

Tensor BytesInput(std::string_view name, const std::string& value) {
  Tensor t{std::string(name), DataType::kBytes, {1}, {}};
  AppendBytesElement(t.data, value);
  return t;
}

// One chat message (`messages[index]`): a string role; content a string, null, or text parts
// (flattened); an assistant's tool_calls, a tool message's tool_call_id.
Result<llm_contract::ChatMessage> ParseChatMessage(const json& m, size_t index) {
  if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
    return FieldError("messages", "entries need a string 'role'");
  llm_contract::ChatMessage out;
  out.role = m["role"];
  if (m.contains("name") && m["name"].is_string()) out.name = m["name"].get<std::string>();
  RETURN_IF_ERROR(ParseMessageToolFields(m, index, out));
  if (!m.contains("content") || m["content"].is_null()) return out;
  const json& content = m["content"];
  if (content.is_string()) {
    out.content = content.get<std::string>();
    return out;
  }
  if (!content.is_array())
    return FieldError("messages", "content must be a string or an array of parts");
  std::string text;
  for (const auto& part : content) {
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text") || !part["text"].is_string())
      return FieldError("messages", "content parts must be of type 'text', with a string 'text'");
    text += part["text"].get<std::string>();
  }
  out.content = std::move(text);
  return out;
}

// Chat's tools, tool_choice and parallel_tool_calls (after the structured-output constraint,
// which a forced tool choice excludes).
Status ReadToolFields(const json& body, const nlohmann::ordered_json* in_order, OpenAIRequest& r) {
  ASSIGN_OR_RETURN(ToolFields tools, ParseToolFields(body, in_order));
  RETURN_IF_ERROR(
      llm_contract::CheckToolChoiceConstraint(tools.choice, r.sampling.structured_output));
  r.tools = std::move(tools.tools);
  r.tool_choice = std::move(tools.choice);
  r.parallel_tool_calls = tools.parallel_tool_calls;
  return Status::Ok();
}

// Chat: vLLM's chat_template_kwargs and include_reasoning. `in_order` (optional): the body
// with its members in the client's order.
Status ParseChatOptions(const json& body, const nlohmann::ordered_json* in_order,
                        OpenAIRequest& r) {
  ASSIGN_OR_RETURN(r.chat_template_kwargs, ParseChatTemplateKwargs(body, in_order));
  if (Has(body, "include_reasoning")) {
    ASSIGN_OR_RETURN(r.include_reasoning,
                     jf::Boolean(body["include_reasoning"], "include_reasoning"));
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<llm_contract::ChatMessage>> ParseChatMessages(const json& body) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    return FieldError("messages", "is required (a non-empty array)");
  std::vector<llm_contract::ChatMessage> messages;
  for (const auto& m : body["messages"]) {
    ASSIGN_OR_RETURN(llm_contract::ChatMessage message, ParseChatMessage(m, messages.size()));
    messages.push_back(std::move(message));
  }
  // The conversation's rules (a tool message answers a call before it), with OpenAI's param.
  RETURN_IF_ERROR(llm_contract::ValidateToolMessages(messages));
  return messages;
}

Result<std::string> ParseChatTemplateKwargs(const json& body,
                                            const nlohmann::ordered_json* in_order) {
  if (!Has(body, "chat_template_kwargs")) return std::string();
  const json& kwargs = body["chat_template_kwargs"];
  if (!kwargs.is_object())
    return FieldError("chat_template_kwargs", "must be an object of template variables");
  const auto replace = json::error_handler_t::replace;
  std::string text = in_order == nullptr ? kwargs.dump(-1, ' ', false, replace)
                                         : DumpKeepingNumerals((*in_order)["chat_template_kwargs"]);
  if (text.size() > llm_contract::kMaxChatTemplateKwargsBytes) {
    return FieldError("chat_template_kwargs",
                      "has " + std::to_string(text.size()) + " bytes, more than " +
                          std::to_string(llm_contract::kMaxChatTemplateKwargsBytes));
  }
  return text;
}

bool MayConstrainOutput(const json& body) {
  if (!body.is_object()) return false;
  for (const auto& [key, value] : body.items())
    if (llm_contract::IsStructuredOutputField(key, Surface::kOpenAI)) return true;
  return HasToolFields(body);
}

nlohmann::ordered_json ReadBodyInOrder(const json& body, std::string_view text) {
  if (!MayConstrainOutput(body) && !Has(body, "chat_template_kwargs")) return nullptr;
  auto read = ParseJsonKeepingNumerals(text);
  if (!read.ok()) return nullptr;
  return std::move(read).value();
}

Result<OpenAIRequest> ParseOpenAIRequest(const json& body, bool chat,
                                         const nlohmann::ordered_json* in_order) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  OpenAIRequest r;
  r.chat = chat;
  if (!body.contains("model") || !body["model"].is_string())
    return FieldError("model", "is required (a string)");
  r.model = body["model"];
  if (chat) {
    ASSIGN_OR_RETURN(r.messages, ParseChatMessages(body));
    RETURN_IF_ERROR(ParseChatOptions(body, in_order, r));
  } else {
    RETURN_IF_ERROR(ParseCompletionPrompt(body, r));
  }
  RETURN_IF_ERROR(ParseChoicesAndStreaming(body, r));
  RETURN_IF_ERROR(ParseSamplingNumbers(body, chat, r.sampling));
  RETURN_IF_ERROR(ParseSamplingLists(body, r.sampling));
  RETURN_IF_ERROR(ParseLogprobs(body, chat, r.sampling));
  RETURN_IF_ERROR(RefuseWhatCannotBeHonoured(body, r.n));
  // response_format, vLLM's guided_* and structured_outputs: at most one of them.
  if (in_order != nullptr) {
    ASSIGN_OR_RETURN(r.sampling.structured_output,
                     llm_contract::ParseStructuredOutput(*in_order, Surface::kOpenAI));
  } else {
    ASSIGN_OR_RETURN(r.sampling.structured_output,
                     llm_contract::ParseStructuredOutput(body, Surface::kOpenAI));
  }
  if (chat) RETURN_IF_ERROR(ReadToolFields(body, in_order, r));
  // The lists' caps and the relations between fields (min_tokens <= max_tokens), from the
  // same table the Triton contract is checked against.
  RETURN_IF_ERROR(llm_contract::ValidateSampling(r.sampling, Surface::kOpenAI));
  return r;
}

int NumChoices(const OpenAIRequest& r) {
  return r.chat ? r.n : static_cast<int>(r.prompts.size() + r.token_prompts.size()) * r.n;
}

const std::string& PromptOf(const OpenAIRequest& r, int index) {
  static const std::string kNone;  // token-id prompts have no text here
  const size_t p = static_cast<size_t>(index / r.n);
  return p < r.prompts.size() ? r.prompts[p] : kNone;
}

llm_contract::LlmRequest ChoiceContract(const OpenAIRequest& r, int index) {
  using Kind = llm_contract::Prompt::Kind;
  llm_contract::LlmRequest c;
  c.sampling = r.sampling;
  c.sampling.n = 1;
  if (r.sampling.seed) c.sampling.seed = *r.sampling.seed + index;
  if (r.chat) {
    c.prompt.kind = Kind::kChat;
    c.prompt.messages = r.messages;
    c.tools = r.tools;
    c.tool_choice = r.tool_choice;
    c.parallel_tool_calls = r.parallel_tool_calls;
    c.prompt.chat_template_kwargs = r.chat_template_kwargs;
  } else if (!r.token_prompts.empty()) {
    c.prompt.kind = Kind::kTokenIds;
    c.prompt.token_ids = r.token_prompts[index / r.n];
  } else {
    c.prompt.text = PromptOf(r, index);
  }
  c.output.stream = true;
  c.output.exclude_input_in_output = true;
  c.output.typed_responses = true;
  c.output.check_context = true;  // as vLLM's OpenAI server
  return c;
}

Result<InferRequest> BuildContractRequest(const llm_contract::LlmRequest& contract,
                                          const std::string& model) {
  InferRequest req;
  req.model_name = model;
  ASSIGN_OR_RETURN(std::string bytes, ipc::EncodeLlmRequest(contract));
  req.parameters[std::string(proto::kLlmRequestParameter)] = std::move(bytes);
  // The model's configuration requires text_input; the contract holds the prompt.
  req.inputs.push_back(BytesInput(proto::kTextInput, ""));
  return req;
}

Result<InferRequest> BuildInferRequest(const OpenAIRequest& r, int index) {
  return BuildContractRequest(ChoiceContract(r, index), r.model);
}

json ErrorBody(const std::string& message, int http_status, const std::string& param) {
  std::string type = http_status == 404   ? "NotFoundError"
                     : http_status == 401 ? "AuthenticationError"
                     : http_status == 403 ? "PermissionDeniedError"
                     : http_status == 405 ? "MethodNotAllowedError"
                     : http_status == 501 ? "NotImplementedError"
                     : http_status >= 500 ? "InternalServerError"
                                          : "BadRequestError";
  if (http_status == 400) type = "invalid_request_error";
  return json{{"error",
               {{"message", message},
                {"type", type},
                {"param", param.empty() ? json(nullptr) : json(param)},
                {"code", http_status}}}};
}

}  // namespace sluice::openai

#include "frontend/openai/openai_request.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>

#include "common/llm_protocol.h"

namespace sluice::openai {
namespace {

namespace proto = llm_protocol;
using nlohmann::json;

constexpr int64_t kMaxN = 16;         // samples a prompt, as the engine allows
constexpr int64_t kMaxPrompts = 256;   // prompts in one completions request
constexpr int64_t kMaxChoices = 1024;  // prompts x n

Status Field(const std::string& name, const std::string& what) {
  return InvalidArgument("'" + name + "' " + what);
}

Result<double> Number(const json& body, const std::string& key, double lo, double hi) {
  const json& v = body[key];
  if (!v.is_number()) return Field(key, "must be a number");
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    return Field(key, "must be between " + json(lo).dump() + " and " + json(hi).dump());
  return x;
}

// Whether v is a JSON integer in [lo, hi] (an unsigned one past int64 included: never
// wrapped to a negative value).
bool IntegerIn(const json& v, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return false;
  const int64_t x = v.get<int64_t>();
  return x >= lo && x <= hi;
}

bool IsTokenId(const json& v) { return IntegerIn(v, 0, INT32_MAX); }

Result<int64_t> Integer(const json& body, const std::string& key, int64_t lo, int64_t hi) {
  const json& v = body[key];
  if (!v.is_number_integer()) return Field(key, "must be an integer");
  if (!IntegerIn(v, lo, hi)) {
    return Field(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  }
  return v.get<int64_t>();
}

// One token-id prompt: a non-empty list of ids in [0, 2^31). The model checks them against
// its vocabulary and context.
bool TokenIds(const json& ids, std::vector<int32_t>& out) {
  if (!ids.is_array() || ids.empty()) return false;
  for (const json& id : ids) {
    if (!IsTokenId(id)) return false;
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
  if (!p.is_array() || p.empty()) return Field("prompt", "must be a string, a list of strings, or token ids");
  const bool strings = std::all_of(p.begin(), p.end(), [](const json& x) { return x.is_string(); });
  const bool batch = p[0].is_array();  // of token-id prompts
  if (!strings && !batch && !p[0].is_number_integer()) {
    return Field("prompt", "must be a string, a list of strings, or token ids");
  }
  if ((strings || batch) && p.size() > static_cast<size_t>(kMaxPrompts)) {
    return Field("prompt", "has more than " + std::to_string(kMaxPrompts) + " prompts");
  }
  if (strings) {
    for (const json& x : p) r.prompts.push_back(x);
    return Status::Ok();
  }
  for (size_t i = 0; i < (batch ? p.size() : 1); ++i) {
    r.token_prompts.emplace_back();
    if (!TokenIds(batch ? p[i] : p, r.token_prompts.back())) {
      return Field("prompt", "token-id prompts must be non-empty lists of token ids");
    }
  }
  return Status::Ok();
}

Tensor BytesInput(std::string_view name, const std::string& value) {
  Tensor t{std::string(name), DataType::kBytes, {1}, {}};
  AppendBytesElement(t.data, value);
  return t;
}

Tensor BoolInput(std::string_view name, bool value) {
  return Tensor{std::string(name), DataType::kBool, {1}, std::string(1, value ? '\1' : '\0')};
}

}  // namespace

Result<nlohmann::ordered_json> ParseChatMessages(const json& body) {
  if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty())
    return Field("messages", "is required (a non-empty array)");
  for (const auto& m : body["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return Field("messages", "entries need a string 'role'");
    if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null() && !m["content"].is_array())
      return Field("messages", "content must be a string or an array of parts");
  }
  // Parts arrays ([{"type":"text","text":...}]) are flattened to their text.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const auto& m : body["messages"]) {
    nlohmann::ordered_json out = nlohmann::ordered_json::parse(m.dump());
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;
      for (const auto& part : m["content"]) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
            !part.contains("text") || !part["text"].is_string())
          return Field("messages", "content parts must be of type 'text', with a string 'text'");
        text += part["text"].get<std::string>();
      }
      out["content"] = text;
    }
    messages.push_back(std::move(out));
  }
  return messages;
}

Result<OpenAIRequest> ParseOpenAIRequest(const json& body, bool chat) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  OpenAIRequest r;
  r.chat = chat;
  if (!body.contains("model") || !body["model"].is_string()) return Field("model", "is required (a string)");
  r.model = body["model"];
  if (chat) {
    ASSIGN_OR_RETURN(r.messages, ParseChatMessages(body));
  } else {
    if (!body.contains("prompt")) return Field("prompt", "is required");
    RETURN_IF_ERROR(ParsePrompts(body["prompt"], r));
    if (body.contains("echo") && !body["echo"].is_null()) {
      if (!body["echo"].is_boolean()) return Field("echo", "must be a boolean");
      r.echo = body["echo"];
    }
    if (r.echo && !r.token_prompts.empty()) {
      return Unsupported("'echo' with token-id prompts is not supported");
    }
    if (body.contains("suffix") && !body["suffix"].is_null()) return Unsupported("'suffix' is not supported");
  }
  auto has = [&](const char* k) { return body.contains(k) && !body[k].is_null(); };
  if (has("n")) {
    ASSIGN_OR_RETURN(int64_t n, Integer(body, "n", 1, kMaxN));
    r.n = static_cast<int>(n);
  }
  if (!chat && (r.prompts.size() + r.token_prompts.size()) * r.n > static_cast<size_t>(kMaxChoices)) {
    return Field("n", "times the prompts is more than " + std::to_string(kMaxChoices) + " choices");
  }
  if (has("stream")) {
    if (!body["stream"].is_boolean()) return Field("stream", "must be a boolean");
    r.stream = body["stream"];
  }
  if (has("stream_options")) {
    if (!body["stream_options"].is_object()) return Field("stream_options", "must be an object");
    if (!r.stream) return Field("stream_options", "is only allowed when 'stream' is true");
    const json& usage = body["stream_options"].contains("include_usage")
                            ? body["stream_options"]["include_usage"]
                            : json(false);
    if (!usage.is_boolean() && !usage.is_null()) {
      return Field("stream_options", "'include_usage' must be a boolean");
    }
    r.include_usage = usage.is_boolean() && usage.get<bool>();
    // vLLM's extension: usage (so far) in every chunk, not only in the last one.
    const json& continuous = body["stream_options"].value("continuous_usage_stats", json(false));
    if (!continuous.is_boolean() && !continuous.is_null()) {
      return Field("stream_options", "'continuous_usage_stats' must be a boolean");
    }
    r.continuous_usage = r.include_usage && continuous.is_boolean() && continuous.get<bool>();
  }
  const char* max_key = has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (has(max_key)) {
    ASSIGN_OR_RETURN(int64_t m, Integer(body, max_key, 1, 1 << 24));
    r.sampling["max_tokens"] = m;
  } else if (chat) {
    r.sampling["max_tokens"] = nullptr;  // up to the context, as OpenAI and vLLM do for chat
  }
  if (has("temperature")) {
    ASSIGN_OR_RETURN(double t, Number(body, "temperature", 0, 2));
    r.sampling["temperature"] = t;
  }
  if (has("top_p")) {
    ASSIGN_OR_RETURN(double t, Number(body, "top_p", 0, 1));
    if (t <= 0) return Field("top_p", "must be greater than 0");
    r.sampling["top_p"] = t;
  }
  for (const char* k : {"presence_penalty", "frequency_penalty"}) {
    if (has(k)) {
      ASSIGN_OR_RETURN(double x, Number(body, k, -2, 2));
      r.sampling[k] = x;
    }
  }
  // vLLM's extensions to the OpenAI API.
  if (has("top_k")) {
    ASSIGN_OR_RETURN(int64_t k, Integer(body, "top_k", -1, 1 << 20));
    r.sampling["top_k"] = k;
  }
  if (has("min_p")) {
    ASSIGN_OR_RETURN(double x, Number(body, "min_p", 0, 1));
    r.sampling["min_p"] = x;
  }
  if (has("repetition_penalty")) {
    ASSIGN_OR_RETURN(double x, Number(body, "repetition_penalty", 1e-6, 100));
    r.sampling["repetition_penalty"] = x;
  }
  if (has("min_tokens")) {
    ASSIGN_OR_RETURN(int64_t x, Integer(body, "min_tokens", 0, 1 << 24));
    r.sampling["min_tokens"] = x;
  }
  if (has("ignore_eos")) {
    if (!body["ignore_eos"].is_boolean()) return Field("ignore_eos", "must be a boolean");
    r.sampling["ignore_eos"] = body["ignore_eos"];
  }
  if (has("stop_token_ids")) {
    const json& ids = body["stop_token_ids"];
    if (!ids.is_array() || !std::all_of(ids.begin(), ids.end(), IsTokenId)) {
      return Field("stop_token_ids", "must be a list of token ids");
    }
    r.sampling["stop_token_ids"] = ids;  // the model checks them against its vocabulary
  }
  if (has("logit_bias")) {
    // {"token id": bias in [-100, 100]}; the model checks the ids against its vocabulary.
    const json& bias = body["logit_bias"];
    if (!bias.is_object()) return Field("logit_bias", "must be an object of token ids to biases");
    json out = json::object();
    for (const auto& [id, b] : bias.items()) {
      char* end = nullptr;
      const long long t = std::strtoll(id.c_str(), &end, 10);
      if (id.empty() || end != id.c_str() + id.size() || t < 0 || t > INT32_MAX) {
        return Field("logit_bias", "keys must be token ids, got \"" + id.substr(0, 32) + "\"");
      }
      if (!b.is_number() || !(std::fabs(b.get<double>()) <= 100)) {
        return Field("logit_bias", "biases must be numbers between -100 and 100");
      }
      out[std::to_string(t)] = b;
    }
    if (!out.empty()) r.sampling["logit_bias"] = out;
  }
  if (has("skip_special_tokens")) {
    if (!body["skip_special_tokens"].is_boolean()) {
      return Field("skip_special_tokens", "must be a boolean");
    }
    r.sampling["skip_special_tokens"] = body["skip_special_tokens"];
  }
  if (has("include_stop_str_in_output")) {
    if (!body["include_stop_str_in_output"].is_boolean()) {
      return Field("include_stop_str_in_output", "must be a boolean");
    }
    r.sampling["include_stop_str_in_output"] = body["include_stop_str_in_output"];
  }
  if (has("stop")) {
    const json& s = body["stop"];
    if (s.is_string()) {
      r.sampling["stop"] = json::array({s});
    } else if (s.is_array() && s.size() <= 4 && std::all_of(s.begin(), s.end(), [](const json& x) { return x.is_string(); })) {
      r.sampling["stop"] = s;
    } else {
      return Field("stop", "must be a string or a list of up to 4 strings");
    }
  }
  if (has("seed")) {
    ASSIGN_OR_RETURN(int64_t seed, Integer(body, "seed", INT64_MIN / 2, INT64_MAX / 2));
    r.seed = seed;
  }
  if (chat) {
    if (has("logprobs")) {
      if (!body["logprobs"].is_boolean()) return Field("logprobs", "must be a boolean");
      if (body["logprobs"].get<bool>()) r.logprobs = 0;
    }
    if (has("top_logprobs")) {
      ASSIGN_OR_RETURN(int64_t k, Integer(body, "top_logprobs", 0, 20));
      if (!r.logprobs) return Field("top_logprobs", "needs 'logprobs': true");
      r.logprobs = static_cast<int>(k);
    }
  } else if (has("logprobs")) {
    ASSIGN_OR_RETURN(int64_t k, Integer(body, "logprobs", 0, 20));
    r.logprobs = static_cast<int>(k);
  }
  if (r.logprobs) r.sampling["logprobs"] = *r.logprobs;
  // What Sluice cannot honour is refused (501) rather than ignored: each changes what the
  // client gets back. Empty lists and objects ask for nothing and pass.
  auto asks = [&](const char* k) {
    return has(k) && !((body[k].is_array() || body[k].is_object()) && body[k].empty());
  };
  for (const char* k : {"tools", "guided_json", "guided_regex", "guided_choice",
                        "guided_grammar", "structured_outputs", "prompt_logprobs",
                        "allowed_token_ids", "bad_words"}) {
    if (asks(k)) return Unsupported("'" + std::string(k) + "' is not supported");
  }
  if (has("use_beam_search") && body["use_beam_search"] != false) {
    return Unsupported("'use_beam_search' is not supported");
  }
  if (has("response_format")) {
    const json& f = body["response_format"];
    if (!f.is_object() || !f.contains("type") || !f["type"].is_string()) {
      return Field("response_format", "must be an object with a string 'type'");
    }
    const std::string type = f["type"];
    if (type != "text") {
      return Unsupported("'response_format' of type '" + type + "' is not supported (only 'text')");
    }
  }
  if (has("best_of")) {
    ASSIGN_OR_RETURN(int64_t best_of, Integer(body, "best_of", 1, kMaxN));
    if (best_of < r.n) return Field("best_of", "must be at least 'n'");
    if (best_of > r.n) return Unsupported("'best_of' greater than 'n' is not supported");
  }
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

InferRequest BuildInferRequest(const OpenAIRequest& r, int index) {
  InferRequest req;
  req.model_name = r.model;
  json sampling = r.sampling;
  sampling["n"] = 1;
  if (r.seed) sampling["seed"] = *r.seed + index;
  req.parameters[std::string(proto::kCheckContextParameter)] = true;  // as vLLM's OpenAI server
  if (r.chat) {
    req.parameters[std::string(proto::kChatMessagesParameter)] = r.messages.dump();
    req.inputs.push_back(BytesInput(proto::kTextInput, ""));
  } else if (!r.token_prompts.empty()) {
    req.parameters[std::string(proto::kPromptTokenIdsParameter)] = json(r.token_prompts[index / r.n]).dump();
    req.inputs.push_back(BytesInput(proto::kTextInput, ""));
  } else {
    req.inputs.push_back(BytesInput(proto::kTextInput, PromptOf(r, index)));
  }
  req.inputs.push_back(BoolInput(proto::kStream, true));
  req.inputs.push_back(BoolInput(proto::kExcludeInputInOutput, true));
  req.inputs.push_back(BytesInput(proto::kSamplingParameters, sampling.dump()));
  req.inputs.push_back(BoolInput(proto::kReturnFinishReason, true));
  req.inputs.push_back(BoolInput(proto::kReturnNumInputTokens, true));
  req.inputs.push_back(BoolInput(proto::kReturnNumOutputTokens, true));
  req.inputs.push_back(BoolInput(proto::kReturnLogprobs, r.logprobs.has_value()));
  return req;
}

namespace {

// Only these keys: a field Sluice would not honour is named, not ignored.
Status OnlyKnownFields(const json& body, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Unsupported("field '" + key.substr(0, 64) + "' is not supported");
    }
  }
  return Status::Ok();
}

Result<std::string> OptionalModel(const json& body) {
  if (!body.contains("model") || body["model"].is_null()) return std::string();
  if (!body["model"].is_string()) return Field("model", "must be a string");
  return body["model"].get<std::string>();
}

Result<std::optional<bool>> OptionalBoolean(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return std::optional<bool>();
  if (!body[key].is_boolean()) return Field(key, "must be a boolean");
  return std::optional<bool>(body[key].get<bool>());
}

}  // namespace

Result<TokenizeRequest> ParseTokenizeRequest(const json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(OnlyKnownFields(body, {"model", "prompt", "messages", "add_special_tokens", "add_generation_prompt",
                                         "return_token_strs", "continue_final_message"}));
  TokenizeRequest r;
  ASSIGN_OR_RETURN(r.model, OptionalModel(body));
  const bool has_prompt = body.contains("prompt"), has_messages = body.contains("messages");
  if (has_prompt == has_messages) return InvalidArgument("give either 'prompt' or 'messages'");
  if (has_prompt) {
    if (!body["prompt"].is_string()) return Field("prompt", "must be a string");
    r.prompt = body["prompt"].get<std::string>();
  } else {
    ASSIGN_OR_RETURN(r.messages, ParseChatMessages(body));
  }
  ASSIGN_OR_RETURN(r.add_special_tokens, OptionalBoolean(body, "add_special_tokens"));
  ASSIGN_OR_RETURN(std::optional<bool> generation_prompt, OptionalBoolean(body, "add_generation_prompt"));
  r.add_generation_prompt = generation_prompt.value_or(true);
  ASSIGN_OR_RETURN(std::optional<bool> token_strs, OptionalBoolean(body, "return_token_strs"));
  if (token_strs.value_or(false)) return Unsupported("'return_token_strs' is not supported");
  ASSIGN_OR_RETURN(std::optional<bool> continue_final, OptionalBoolean(body, "continue_final_message"));
  if (continue_final.value_or(false)) return Unsupported("'continue_final_message' is not supported");
  return r;
}

InferRequest BuildTokenizeRequest(const TokenizeRequest& r, const std::string& repository_model) {
  InferRequest req;
  req.model_name = repository_model;
  req.parameters[std::string(proto::kTokenizeParameter)] = true;
  if (r.add_special_tokens) req.parameters[std::string(proto::kAddSpecialTokensParameter)] = *r.add_special_tokens;
  if (r.prompt) {
    req.inputs.push_back(BytesInput(proto::kTextInput, *r.prompt));
  } else {
    req.parameters[std::string(proto::kChatMessagesParameter)] = r.messages.dump();
    req.parameters[std::string(proto::kAddGenerationPromptParameter)] = r.add_generation_prompt;
    req.inputs.push_back(BytesInput(proto::kTextInput, ""));
  }
  return req;
}

Result<DetokenizeRequest> ParseDetokenizeRequest(const json& body) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(OnlyKnownFields(body, {"model", "tokens"}));
  DetokenizeRequest r;
  ASSIGN_OR_RETURN(r.model, OptionalModel(body));
  if (!body.contains("tokens") || !body["tokens"].is_array()) return Field("tokens", "is required (a list of token ids)");
  for (const json& id : body["tokens"]) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      return Field("tokens", "holds " + id.dump().substr(0, 32) + ", not a token id");
    }
    r.tokens.push_back(static_cast<int32_t>(id.get<int64_t>()));
  }
  return r;
}

InferRequest BuildDetokenizeRequest(const DetokenizeRequest& r, const std::string& repository_model) {
  InferRequest req;
  req.model_name = repository_model;
  req.parameters[std::string(proto::kDetokenizeParameter)] = true;
  req.parameters[std::string(proto::kPromptTokenIdsParameter)] = json(r.tokens).dump();
  req.inputs.push_back(BytesInput(proto::kTextInput, ""));
  return req;
}

json ErrorBody(const std::string& message, int http_status) {
  std::string type = http_status == 404   ? "NotFoundError"
                     : http_status == 401 ? "AuthenticationError"
                     : http_status == 403 ? "PermissionDeniedError"
                     : http_status == 405 ? "MethodNotAllowedError"
                     : http_status == 501 ? "NotImplementedError"
                     : http_status >= 500 ? "InternalServerError"
                                          : "BadRequestError";
  if (http_status == 400) type = "invalid_request_error";
  return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", http_status}}}};
}

}  // namespace sluice::openai

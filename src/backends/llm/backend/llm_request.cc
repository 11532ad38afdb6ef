#include "backends/llm/backend/llm_request.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstring>
#include <optional>

#include "common/llm_protocol.h"

namespace sluice::llm {
namespace {

namespace proto = llm_protocol;
using nlohmann::json;

const Tensor* FindInput(const InferRequest& r, std::string_view name) {
  for (const auto& t : r.inputs)
    if (t.name == name) return &t;
  return nullptr;
}

Result<std::string> BytesScalar(const Tensor& t) {
  if (t.datatype != DataType::kBytes) return InvalidArgument("input '" + t.name + "' must be BYTES");
  ASSIGN_OR_RETURN(auto elems, SplitBytesElements(t.data));
  if (elems.size() != 1) return InvalidArgument("input '" + t.name + "' must hold exactly one element");
  return std::string(elems[0]);
}

Result<bool> BoolScalar(const Tensor& t) {
  if (t.datatype != DataType::kBool || t.data.size() != 1)
    return InvalidArgument("input '" + t.name + "' must be one BOOL");
  return t.data[0] != 0;
}

Result<bool> OptionalBool(const InferRequest& r, std::string_view name, bool fallback) {
  if (const Tensor* t = FindInput(r, name)) return BoolScalar(*t);
  auto it = r.parameters.find(std::string(name));
  if (it != r.parameters.end()) {
    if (auto* b = std::get_if<bool>(&it->second)) return *b;
    return InvalidArgument("parameter '" + std::string(name) + "' must be a boolean");
  }
  return fallback;
}

Result<double> Number(const json& v, const std::string& key) {
  double x = 0;
  if (v.is_number()) {
    x = v.get<double>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    x = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size())
      return InvalidArgument("sampling parameter '" + key + "' must be a number, got \"" + s.substr(0, 32) + "\"");
  } else {
    return InvalidArgument("sampling parameter '" + key + "' must be a number");
  }
  if (!std::isfinite(x)) return InvalidArgument("sampling parameter '" + key + "' must be finite");
  return x;
}

// JSON integers and integer strings are taken exactly (a seed past 2^53 keeps every bit, as
// the OpenAI route accepts it); a float must hold an integral value a double represents exactly.
Result<int64_t> Integer(const json& v, const std::string& key) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return InvalidArgument("sampling parameter '" + key + "' is out of range");
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    int64_t exact = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), exact);
    if (ec == std::errc() && end == s.data() + s.size()) return exact;
    if (ec == std::errc::result_out_of_range)
      return InvalidArgument("sampling parameter '" + key + "' is out of range");
  }
  ASSIGN_OR_RETURN(double x, Number(v, key));
  if (x != std::floor(x) || std::fabs(x) > 9.0e15)
    return InvalidArgument("sampling parameter '" + key + "' must be an integer");
  return static_cast<int64_t>(x);
}

Result<int32_t> Int32(const json& v, const std::string& key) {
  ASSIGN_OR_RETURN(int64_t x, Integer(v, key));
  if (x < INT32_MIN || x > INT32_MAX) return InvalidArgument("sampling parameter '" + key + "' is out of range");
  return static_cast<int32_t>(x);
}

Result<bool> Boolean(const json& v, const std::string& key) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() && (v == "true" || v == "True")) return true;
  if (v.is_string() && (v == "false" || v == "False")) return false;
  return InvalidArgument("sampling parameter '" + key + "' must be a boolean");
}

}  // namespace

Status ApplySamplingJson(const json& object, SamplingParams& p) {
  if (!object.is_object()) return InvalidArgument("sampling_parameters must be a JSON object");
  std::optional<int32_t> best_of;
  for (auto& [key, v] : object.items()) {
    if (v.is_null()) {
      if (key == "max_tokens") p.max_tokens.reset();  // up to the context length
      continue;
    }
    if (key == "n") {
      ASSIGN_OR_RETURN(p.n, Int32(v, key));
    } else if (key == "temperature") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.temperature = static_cast<float>(x);
    } else if (key == "top_p") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.top_p = static_cast<float>(x);
    } else if (key == "top_k") {
      ASSIGN_OR_RETURN(p.top_k, Int32(v, key));
    } else if (key == "min_p") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.min_p = static_cast<float>(x);
    } else if (key == "repetition_penalty") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.repetition_penalty = static_cast<float>(x);
    } else if (key == "presence_penalty") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.presence_penalty = static_cast<float>(x);
    } else if (key == "frequency_penalty") {
      ASSIGN_OR_RETURN(double x, Number(v, key));
      p.frequency_penalty = static_cast<float>(x);
    } else if (key == "seed") {
      ASSIGN_OR_RETURN(int64_t x, Integer(v, key));
      p.seed = x;
    } else if (key == "max_tokens") {
      ASSIGN_OR_RETURN(p.max_tokens, Int32(v, key));
    } else if (key == "min_tokens") {
      ASSIGN_OR_RETURN(p.min_tokens, Int32(v, key));
    } else if (key == "ignore_eos") {
      ASSIGN_OR_RETURN(p.ignore_eos, Boolean(v, key));
    } else if (key == "include_stop_str_in_output") {
      ASSIGN_OR_RETURN(p.include_stop_str_in_output, Boolean(v, key));
    } else if (key == "logprobs") {
      ASSIGN_OR_RETURN(int32_t x, Int32(v, key));
      p.logprobs = x;
    } else if (key == "stop") {
      p.stop.clear();
      if (v.is_string()) {
        p.stop.push_back(v.get<std::string>());
      } else if (v.is_array()) {
        for (auto& s : v) {
          if (!s.is_string()) return InvalidArgument("sampling parameter 'stop' must be strings");
          p.stop.push_back(s.get<std::string>());
        }
      } else {
        return InvalidArgument("sampling parameter 'stop' must be a string or a list of strings");
      }
    } else if (key == "stop_token_ids") {
      if (!v.is_array()) return InvalidArgument("sampling parameter 'stop_token_ids' must be a list");
      p.stop_token_ids.clear();
      for (auto& t : v) {
        ASSIGN_OR_RETURN(int32_t id, Int32(t, key));
        p.stop_token_ids.push_back(id);
      }
    } else if (key == "logit_bias") {
      // vLLM's dict[int, float]: {"token id": bias}.
      if (!v.is_object()) return InvalidArgument("sampling parameter 'logit_bias' must be an object");
      p.logit_bias.clear();
      for (auto& [id_text, bias] : v.items()) {
        ASSIGN_OR_RETURN(int32_t id, Int32(json(id_text), key));
        ASSIGN_OR_RETURN(double b, Number(bias, key));
        p.logit_bias.emplace_back(id, static_cast<float>(b));
      }
    } else if (key == "skip_special_tokens") {
      ASSIGN_OR_RETURN(p.skip_special_tokens, Boolean(v, key));
    } else if (key == "best_of") {
      ASSIGN_OR_RETURN(best_of, Int32(v, key));
    } else if (key == "spaces_between_special_tokens") {
      // Accepted for vLLM compatibility: it only changes slow (Python) tokenizers' output.
    } else {
      return InvalidArgument("unknown sampling parameter '" + key + "'");
    }
  }
  // best_of = n (every sample drawn is returned) is what Sluice does; more would need the
  // best n of best_of by cumulative logprob, which it does not do.
  if (best_of && *best_of < p.n) {
    return InvalidArgument("sampling parameter 'best_of' must be at least 'n'");
  }
  if (best_of && *best_of > p.n) {
    return Unsupported("sampling parameter 'best_of' greater than 'n' is not supported");
  }
  return Status::Ok();
}

Result<LlmRequest> ParseLlmRequest(const InferRequest& request) {
  LlmRequest r;
  auto chat = request.parameters.find(std::string(proto::kChatMessagesParameter));
  auto tokens = request.parameters.find(std::string(proto::kPromptTokenIdsParameter));
  if (tokens != request.parameters.end()) {
    if (chat != request.parameters.end()) {
      return InvalidArgument("parameters 'sluice_prompt_token_ids' and 'sluice_chat_messages' exclude each other");
    }
    const auto* text = std::get_if<std::string>(&tokens->second);
    json ids = text ? json::parse(*text, nullptr, false) : json();
    if (!ids.is_array() || ids.empty()) {
      return InvalidArgument("parameter 'sluice_prompt_token_ids' must be a non-empty JSON array of token ids");
    }
    r.prompt_token_ids.emplace();
    for (const json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return InvalidArgument("parameter 'sluice_prompt_token_ids' holds " + id.dump().substr(0, 32) +
                               ", not a token id");
      }
      r.prompt_token_ids->push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  } else if (chat != request.parameters.end()) {
    const auto* text = std::get_if<std::string>(&chat->second);
    if (!text) return InvalidArgument("parameter 'sluice_chat_messages' must be a JSON string");
    auto messages = nlohmann::ordered_json::parse(*text, nullptr, false);
    if (!messages.is_array()) return InvalidArgument("chat messages must be a JSON array");
    r.chat = std::move(messages);
    ASSIGN_OR_RETURN(r.add_generation_prompt, OptionalBool(request, proto::kAddGenerationPromptParameter, true));
  } else {
    const Tensor* text = FindInput(request, proto::kTextInput);
    if (!text) return InvalidArgument("input 'text_input' is required");
    ASSIGN_OR_RETURN(r.prompt, BytesScalar(*text));
  }
  ASSIGN_OR_RETURN(r.stream, OptionalBool(request, proto::kStream, false));
  ASSIGN_OR_RETURN(r.exclude_input_in_output, OptionalBool(request, proto::kExcludeInputInOutput, r.stream || r.chat.has_value()));
  if (r.stream && !r.exclude_input_in_output)
    return InvalidArgument("When streaming, `exclude_input_in_output` = False is not allowed.");
  ASSIGN_OR_RETURN(r.return_finish_reason, OptionalBool(request, proto::kReturnFinishReason, false));
  ASSIGN_OR_RETURN(r.return_cumulative_logprob, OptionalBool(request, proto::kReturnCumulativeLogprob, false));
  ASSIGN_OR_RETURN(r.return_logprobs, OptionalBool(request, proto::kReturnLogprobs, false));
  ASSIGN_OR_RETURN(r.return_num_input_tokens, OptionalBool(request, proto::kReturnNumInputTokens, false));
  ASSIGN_OR_RETURN(r.return_num_output_tokens, OptionalBool(request, proto::kReturnNumOutputTokens, false));
  ASSIGN_OR_RETURN(r.check_context, OptionalBool(request, proto::kCheckContextParameter, false));
  ASSIGN_OR_RETURN(const bool tokenize, OptionalBool(request, proto::kTokenizeParameter, false));
  ASSIGN_OR_RETURN(const bool detokenize, OptionalBool(request, proto::kDetokenizeParameter, false));
  if (tokenize && detokenize) {
    return InvalidArgument("parameters 'sluice_tokenize' and 'sluice_detokenize' exclude each other");
  }
  if (detokenize && !r.prompt_token_ids) {
    return InvalidArgument("parameter 'sluice_detokenize' needs 'sluice_prompt_token_ids'");
  }
  r.task = tokenize ? LlmRequest::Task::kTokenize : detokenize ? LlmRequest::Task::kDetokenize : LlmRequest::Task::kGenerate;
  if (request.parameters.contains(std::string(proto::kAddSpecialTokensParameter))) {
    ASSIGN_OR_RETURN(r.add_special_tokens, OptionalBool(request, proto::kAddSpecialTokensParameter, true));
  }

  if (const Tensor* sp = FindInput(request, proto::kSamplingParameters)) {
    ASSIGN_OR_RETURN(std::string text, BytesScalar(*sp));
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return InvalidArgument("sampling_parameters is not valid JSON");
    RETURN_IF_ERROR(ApplySamplingJson(j, r.sampling));
  } else {
    // Request parameters with vLLM's names (the generate endpoint puts unknown keys here).
    json j = json::object();
    for (const auto& [key, value] : request.parameters) {
      if (key.rfind("sluice_", 0) == 0 || key.rfind("triton_", 0) == 0 || key == "stream" ||
          key.rfind("return_", 0) == 0 || key == "exclude_input_in_output" || key == "binary_data_output" ||
          key == "priority" || key == "timeout" || key == "headers" || key.rfind("sequence_", 0) == 0)
        continue;
      std::visit([&j, &name = key](const auto& v) { j[name] = v; }, value);
    }
    // "stop" arrives as a JSON-encoded list when sent as a string parameter.
    if (j.contains("stop") && j["stop"].is_string()) {
      auto parsed = json::parse(j["stop"].get<std::string>(), nullptr, false);
      if (parsed.is_array()) j["stop"] = parsed;
    }
    RETURN_IF_ERROR(ApplySamplingJson(j, r.sampling));
  }
  return r;
}

}  // namespace sluice::llm

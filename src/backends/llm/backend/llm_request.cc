#include "backends/llm/backend/llm_request.h"

#include <optional>
#include <type_traits>

#include "backends/llm/backend/tool_calling.h"
#include "backends/llm/tokenizer/bounded_json.h"
#include "common/json_fields.h"
#include "common/json_numerals.h"
#include "common/llm_protocol.h"
#include "common/structured_output_fields.h"
#include "common/tool_contract.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::llm {
namespace {

namespace proto = llm_protocol;
namespace jf = json_fields;
using llm_contract::LlmRequest;
using llm_contract::SamplingParameters;
using nlohmann::json;

// sampling_parameters nests little (a JSON schema in guided_json the most): the depth is
// capped before anything is built or dumped again.
constexpr size_t kMaxSamplingJsonDepth = 64;

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

// A BOOL input, else a boolean request parameter of that name, else `fallback`.
Result<bool> OptionalBool(const InferRequest& r, std::string_view name, bool fallback) {
  if (const Tensor* t = FindInput(r, name)) return BoolScalar(*t);
  auto it = r.parameters.find(std::string(name));
  if (it != r.parameters.end()) {
    if (auto* b = std::get_if<bool>(&it->second)) return *b;
    return InvalidArgument("parameter '" + std::string(name) + "' must be a boolean");
  }
  return fallback;
}

Status ApplyStop(const json& v, SamplingParameters& p) {
  p.stop.clear();
  if (v.is_string()) {
    p.stop.push_back(v.get<std::string>());
    return Status::Ok();
  }
  if (!v.is_array()) return jf::FieldError("stop", "must be a string or a list of strings");
  for (const json& s : v) {
    if (!s.is_string()) return jf::FieldError("stop", "must be strings");
    p.stop.push_back(s.get<std::string>());
  }
  return Status::Ok();
}

Status ApplyStopTokenIds(const json& v, SamplingParameters& p) {
  if (!v.is_array()) return jf::FieldError("stop_token_ids", "must be a list");
  p.stop_token_ids.clear();
  for (const json& t : v) {
    ASSIGN_OR_RETURN(int32_t id, jf::LenientInt32(t, "stop_token_ids"));
    p.stop_token_ids.push_back(id);
  }
  return Status::Ok();
}

// vLLM's dict[int, float]: {"token id": bias}.
Status ApplyLogitBias(const json& v, SamplingParameters& p) {
  if (!v.is_object()) return jf::FieldError("logit_bias", "must be an object");
  p.logit_bias.clear();
  for (const auto& [id_text, bias] : v.items()) {
    ASSIGN_OR_RETURN(int32_t id, jf::LenientInt32(json(id_text), "logit_bias"));
    ASSIGN_OR_RETURN(double b, jf::LenientNumber(bias, "logit_bias"));
    p.logit_bias.emplace_back(id, b);
  }
  return Status::Ok();
}

// One vLLM-named parameter (not null) into `p`; best_of is kept aside.
Status ApplyOne(const std::string& key, const json& v, SamplingParameters& p,
                std::optional<int32_t>& best_of) {
  auto number = [&](double& out) -> Status {
    ASSIGN_OR_RETURN(out, jf::LenientNumber(v, key));
    return Status::Ok();
  };
  auto int32 = [&](int32_t& out) -> Status {
    ASSIGN_OR_RETURN(out, jf::LenientInt32(v, key));
    return Status::Ok();
  };
  auto boolean = [&](bool& out) -> Status {
    ASSIGN_OR_RETURN(out, jf::LenientBoolean(v, key));
    return Status::Ok();
  };
  if (key == "n") return int32(p.n);
  if (key == "temperature") return number(p.temperature);
  if (key == "top_p") return number(p.top_p);
  if (key == "top_k") return int32(p.top_k);
  if (key == "min_p") return number(p.min_p);
  if (key == "repetition_penalty") return number(p.repetition_penalty);
  if (key == "presence_penalty") return number(p.presence_penalty);
  if (key == "frequency_penalty") return number(p.frequency_penalty);
  if (key == "min_tokens") return int32(p.min_tokens);
  if (key == "ignore_eos") return boolean(p.ignore_eos);
  if (key == "include_stop_str_in_output") return boolean(p.include_stop_str_in_output);
  if (key == "skip_special_tokens") return boolean(p.skip_special_tokens);
  if (key == "stop") return ApplyStop(v, p);
  if (key == "stop_token_ids") return ApplyStopTokenIds(v, p);
  if (key == "logit_bias") return ApplyLogitBias(v, p);
  if (key == "seed") {
    ASSIGN_OR_RETURN(p.seed, jf::LenientInteger(v, key));
  } else if (key == "max_tokens") {
    ASSIGN_OR_RETURN(p.max_tokens, jf::LenientInt32(v, key));
  } else if (key == "logprobs") {
    ASSIGN_OR_RETURN(p.logprobs, jf::LenientInt32(v, key));
  } else if (key == "best_of") {
    ASSIGN_OR_RETURN(best_of, jf::LenientInt32(v, key));
  } else if (key != "spaces_between_special_tokens") {
    // spaces_between_special_tokens is accepted for vLLM compatibility: it only changes
    // slow (Python) tokenizers' output.
    return InvalidArgument("unknown sampling parameter '" + key + "'");
  }
  return Status::Ok();
}

// The structured-output fields of `object`; a list or an object sent as its JSON text
// (guided_choice, structured_outputs, as request parameters carry them) parsed, bounded.
template <typename Json>
Result<Json> StructuredOutputJson(const Json& object) {
  Json out = Json::object();
  for (const auto& [key, v] : object.items()) {
    if (!llm_contract::IsStructuredOutputField(key, llm_contract::Surface::kTriton)) continue;
    const bool text_of_json =
        v.is_string() && key != "guided_json" && key != "guided_regex" && key != "guided_grammar";
    if (!text_of_json) {
      out[key] = v;
      continue;
    }
    const std::string text = v.template get<std::string>();
    ASSIGN_OR_RETURN(json parsed, ParseJsonBounded(text, kMaxSamplingJsonDepth,
                                                   "sampling_parameters '" + key + "'"));
    if constexpr (std::is_same_v<Json, json>) {
      out[key] = std::move(parsed);
    } else {
      out[key] = Json::parse(text, nullptr, false);  // checked above
    }
  }
  return out;
}

// The constraint of a sampling_parameters object.
template <typename Json>
Result<std::optional<llm_contract::StructuredOutput>> ReadConstraint(const Json& object) {
  ASSIGN_OR_RETURN(Json fields, StructuredOutputJson(object));
  auto constraint = llm_contract::ParseStructuredOutput(fields, llm_contract::Surface::kTriton);
  if (!constraint.ok()) return constraint.status().WithPrefix("sampling_parameters");
  return constraint;
}

// Sampling parameters of a Triton request: the sampling_parameters JSON input, or request
// parameters with vLLM's names (the generate endpoint puts unknown keys there).
Status ReadTritonSampling(const InferRequest& request, SamplingParameters& p) {
  if (const Tensor* sp = FindInput(request, proto::kSamplingParameters)) {
    ASSIGN_OR_RETURN(std::string text, BytesScalar(*sp));
    ASSIGN_OR_RETURN(json j, ParseJsonBounded(text, kMaxSamplingJsonDepth, "sampling_parameters"));
    RETURN_IF_ERROR(ApplySamplingJson(j, p));
    // A schema's properties are generated in the client's order, which json sorted: the
    // constraint again from the text read in order (bounded: checked above), its big integers
    // as written (common/json_numerals.h).
    if (p.structured_output) {
      ASSIGN_OR_RETURN(nlohmann::ordered_json in_order, ParseJsonKeepingNumerals(text));
      ASSIGN_OR_RETURN(p.structured_output, ReadConstraint(in_order));
    }
    return Status::Ok();
  }
  json j = json::object();
  for (const auto& [key, value] : request.parameters) {
    if (key.rfind("sluice_", 0) == 0 || key.rfind("triton_", 0) == 0 || key == "stream" ||
        key.rfind("return_", 0) == 0 || key == "exclude_input_in_output" ||
        key == "binary_data_output" || key == "priority" || key == "timeout" || key == "headers" ||
        key.rfind("sequence_", 0) == 0)
      continue;
    std::visit([&j, &name = key](const auto& v) { j[name] = v; }, value);
  }
  // "stop" arrives as a JSON-encoded list when sent as a string parameter.
  if (j.contains("stop") && j["stop"].is_string()) {
    auto parsed = json::parse(j["stop"].get<std::string>(), nullptr, false);
    if (parsed.is_array()) j["stop"] = parsed;
  }
  return ApplySamplingJson(j, p);
}

// Triton's vLLM-backend contract.
Result<LlmRequest> ParseTritonRequest(const InferRequest& request) {
  LlmRequest r;
  const Tensor* text = FindInput(request, proto::kTextInput);
  if (!text) return InvalidArgument("input 'text_input' is required");
  ASSIGN_OR_RETURN(r.prompt.text, BytesScalar(*text));
  llm_contract::OutputOptions& o = r.output;
  ASSIGN_OR_RETURN(o.stream, OptionalBool(request, proto::kStream, false));
  ASSIGN_OR_RETURN(o.exclude_input_in_output,
                   OptionalBool(request, proto::kExcludeInputInOutput, o.stream));
  if (o.stream && !o.exclude_input_in_output)
    return InvalidArgument("When streaming, `exclude_input_in_output` = False is not allowed.");
  ASSIGN_OR_RETURN(o.return_finish_reason,
                   OptionalBool(request, proto::kReturnFinishReason, false));
  ASSIGN_OR_RETURN(o.return_cumulative_logprob,
                   OptionalBool(request, proto::kReturnCumulativeLogprob, false));
  ASSIGN_OR_RETURN(o.return_logprobs, OptionalBool(request, proto::kReturnLogprobs, false));
  ASSIGN_OR_RETURN(o.return_num_input_tokens,
                   OptionalBool(request, proto::kReturnNumInputTokens, false));
  ASSIGN_OR_RETURN(o.return_num_output_tokens,
                   OptionalBool(request, proto::kReturnNumOutputTokens, false));
  RETURN_IF_ERROR(ReadTritonSampling(request, r.sampling));
  RETURN_IF_ERROR(llm_contract::ValidateSampling(r.sampling, llm_contract::Surface::kTriton)
                      .WithPrefix("sampling_parameters"));
  return r;
}

}  // namespace

Status ApplySamplingJson(const json& object, SamplingParameters& p) {
  if (!object.is_object()) return InvalidArgument("sampling_parameters must be a JSON object");
  ASSIGN_OR_RETURN(p.structured_output, ReadConstraint(object));
  std::optional<int32_t> best_of;
  for (const auto& [key, v] : object.items()) {
    if (llm_contract::IsStructuredOutputField(key, llm_contract::Surface::kTriton)) continue;
    if (v.is_null()) {
      if (key == "max_tokens") p.max_tokens.reset();  // up to the context length
      continue;
    }
    RETURN_IF_ERROR(ApplyOne(key, v, p, best_of).WithPrefix("sampling_parameters"));
  }
  if (best_of)
    RETURN_IF_ERROR(llm_contract::CheckBestOf(*best_of, p.n).WithPrefix("sampling_parameters"));
  return Status::Ok();
}

Result<LlmRequest> ParseLlmRequest(const InferRequest& request) {
  auto own = request.parameters.find(std::string(proto::kLlmRequestParameter));
  if (own == request.parameters.end()) return ParseTritonRequest(request);
  const auto* bytes = std::get_if<std::string>(&own->second);
  if (!bytes) return InvalidArgument("parameter 'sluice_llm_request' must be a string");
  auto decoded = ipc::DecodeLlmRequest(*bytes);
  if (!decoded.ok()) return decoded.status().WithPrefix("parameter 'sluice_llm_request'");
  // The OpenAI frontend validated it; a KServe client may have written it, so the bounds
  // are checked again (the same table).
  RETURN_IF_ERROR(
      llm_contract::ValidateSampling(decoded->sampling, llm_contract::Surface::kTriton));
  RETURN_IF_ERROR(llm_contract::ValidateToolRequest(*decoded));
  return decoded;
}

structured::StructuredOutputSpec ToEngineSpec(const llm_contract::StructuredOutput& c) {
  using Kind = structured::StructuredOutputSpec::Kind;
  structured::StructuredOutputSpec spec;
  spec.text = c.text;
  switch (c.kind) {
    case llm_contract::StructuredOutput::Kind::kJsonSchema:
      spec.kind = Kind::kJsonSchema;
      break;
    case llm_contract::StructuredOutput::Kind::kJsonObject:
      spec.kind = Kind::kJsonObject;
      break;
    case llm_contract::StructuredOutput::Kind::kRegex:
      spec.kind = Kind::kRegex;
      break;
    case llm_contract::StructuredOutput::Kind::kChoice:
      spec.kind = Kind::kChoice;
      break;
    case llm_contract::StructuredOutput::Kind::kGrammar:
      spec.kind = Kind::kGrammar;
      break;
  }
  return spec;
}

SamplingParams ToEngineSampling(const SamplingParameters& p) {
  SamplingParams e;
  e.n = p.n;
  e.temperature = static_cast<float>(p.temperature);
  e.top_p = static_cast<float>(p.top_p);
  e.top_k = p.top_k;
  e.min_p = static_cast<float>(p.min_p);
  e.repetition_penalty = static_cast<float>(p.repetition_penalty);
  e.presence_penalty = static_cast<float>(p.presence_penalty);
  e.frequency_penalty = static_cast<float>(p.frequency_penalty);
  e.seed = p.seed;
  e.max_tokens = p.max_tokens;
  e.min_tokens = p.min_tokens;
  e.stop = p.stop;
  e.stop_token_ids = p.stop_token_ids;
  e.ignore_eos = p.ignore_eos;
  for (const auto& [id, bias] : p.logit_bias)
    e.logit_bias.emplace_back(id, static_cast<float>(bias));
  e.include_stop_str_in_output = p.include_stop_str_in_output;
  e.skip_special_tokens = p.skip_special_tokens;
  e.logprobs = p.logprobs;
  if (p.structured_output) e.structured_output = ToEngineSpec(*p.structured_output);
  return e;
}

nlohmann::ordered_json TemplateMessages(const std::vector<llm_contract::ChatMessage>& messages) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const llm_contract::ChatMessage& m : messages) {
    nlohmann::ordered_json j = {{"role", m.role}};
    j["content"] = m.content ? nlohmann::ordered_json(*m.content) : nlohmann::ordered_json(nullptr);
    if (m.name) j["name"] = *m.name;
    AddTemplateToolFields(m, j);
    out.push_back(std::move(j));
  }
  return out;
}

Result<nlohmann::ordered_json> TemplateKwargs(const llm_contract::Prompt& prompt) {
  using Ordered = nlohmann::ordered_json;
  if (prompt.chat_template_kwargs.empty()) return Ordered::object();
  ASSIGN_OR_RETURN(json bounded, ParseJsonBounded(prompt.chat_template_kwargs,
                                                  kMaxSamplingJsonDepth, "chat_template_kwargs"));
  if (!bounded.is_object()) return InvalidArgument("'chat_template_kwargs' must be an object");
  for (const char* set : {"messages", "add_generation_prompt", "tools"}) {
    if (bounded.contains(set))
      return InvalidArgument("'chat_template_kwargs' must not set '" + std::string(set) +
                             "' (the request's own field sets it)");
  }
  // Read again keeping the client's key order, which a template's tojson shows.
  return Ordered::parse(prompt.chat_template_kwargs, nullptr, /*allow_exceptions=*/false);
}

}  // namespace sluice::llm

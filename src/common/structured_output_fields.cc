#include "common/structured_output_fields.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "common/json_fields.h"
#include "common/json_numerals.h"

namespace sluice::llm_contract {
namespace {

namespace jf = json_fields;
using Kind = StructuredOutput::Kind;

// vLLM's request fields, one constraint each.
constexpr std::string_view kGuidedFields[] = {"guided_json", "guided_regex", "guided_choice",
                                              "guided_grammar"};
// vLLM's constraint objects: structured_outputs, and (Triton: its SamplingParams' older
// name) guided_decoding.
constexpr std::string_view kStructuredOutputs = "structured_outputs";
constexpr std::string_view kGuidedDecoding = "guided_decoding";
// structured_outputs' keys: the constraints, then options that change nothing here (Sluice
// has one grammar engine), then those it cannot honour when set.
constexpr std::string_view kObjectConstraints[] = {"json", "regex", "choice", "grammar",
                                                   "json_object"};
constexpr std::string_view kIgnoredOptions[] = {"backend", "disable_fallback"};
constexpr std::string_view kRefusedOptions[] = {"structural_tag", "whitespace_pattern",
                                                "disable_any_whitespace",
                                                "disable_additional_properties"};

template <size_t N>
bool In(const std::string_view (&names)[N], std::string_view key) {
  return std::find(std::begin(names), std::end(names), key) != std::end(names);
}

// Compact JSON, members in the order `v` holds them, big integers as written where `v` kept
// them (json_numerals.h); invalid UTF-8 (which the parsers refuse anyway) replaced, never a
// throw.
template <typename Json>
std::string Dump(const Json& v) {
  if constexpr (std::is_same_v<Json, nlohmann::ordered_json>) {
    return DumpKeepingNumerals(v);
  } else {
    return v.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

// `key` is there and not null.
template <typename Json>
bool Has(const Json& object, std::string_view key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

template <typename Json>
const Json& At(const Json& object, std::string_view key) {
  return *object.find(key);
}

// A boolean; on Triton also "true" / "True" / "false" / "False" (json_fields' lenient reading).
template <typename Json>
Result<bool> Switch(const Json& v, std::string_view field, Surface surface) {
  if (v.is_boolean()) return v.template get<bool>();
  if (surface == Surface::kTriton && v.is_string()) {
    const std::string s = v.template get<std::string>();
    if (s == "true" || s == "True") return true;
    if (s == "false" || s == "False") return false;
  }
  return jf::FieldError(field, "must be a boolean");
}

// The constraints found so far: one is allowed.
class Found {
 public:
  Status Add(std::string field, Kind kind, std::string text) {
    if (found_)
      return InvalidArgument("'" + field_ + "' and '" + field +
                             "' both constrain the output: give one of them");
    if (text.size() > kMaxStructuredOutputBytes)
      return jf::FieldError(field, "has " + std::to_string(text.size()) + " bytes, more than " +
                                       std::to_string(kMaxStructuredOutputBytes));
    field_ = std::move(field);
    found_ = StructuredOutput{kind, std::move(text)};
    return Status::Ok();
  }
  std::optional<StructuredOutput> Take() { return std::move(found_); }

 private:
  std::string field_;
  std::optional<StructuredOutput> found_;
};

// A JSON schema: an object (or a boolean schema), or its text (vLLM takes either).
template <typename Json>
Status AddSchema(Found& found, const std::string& field, const Json& v) {
  if (v.is_string()) return found.Add(field, Kind::kJsonSchema, v.template get<std::string>());
  if (!v.is_object() && !v.is_boolean())
    return jf::FieldError(field, "must be a JSON schema (an object) or its text");
  return found.Add(field, Kind::kJsonSchema, Dump(v));
}

template <typename Json>
Status AddString(Found& found, const std::string& field, const Json& v, Kind kind) {
  if (!v.is_string()) return jf::FieldError(field, "must be a string");
  return found.Add(field, kind, v.template get<std::string>());
}

template <typename Json>
Status AddChoice(Found& found, const std::string& field, const Json& v) {
  const bool strings = v.is_array() && !v.empty() &&
                       std::all_of(v.begin(), v.end(), [](const Json& x) { return x.is_string(); });
  if (!strings) return jf::FieldError(field, "must be a non-empty list of strings");
  return found.Add(field, Kind::kChoice, Dump(v));
}

// One of the guided_* fields or structured_outputs' constraints (`key` without its
// object's name).
template <typename Json>
Status AddConstraint(Found& found, std::string_view key, const std::string& field, const Json& v,
                     Surface surface) {
  if (key == "guided_json" || key == "json") return AddSchema(found, field, v);
  if (key == "guided_regex" || key == "regex") return AddString(found, field, v, Kind::kRegex);
  if (key == "guided_choice" || key == "choice") return AddChoice(found, field, v);
  if (key == "guided_grammar" || key == "grammar")
    return AddString(found, field, v, Kind::kGrammar);
  // json_object: a switch.
  ASSIGN_OR_RETURN(bool on, Switch(v, field, surface));
  return on ? found.Add(field, Kind::kJsonObject, "") : Status::Ok();
}

// vLLM's StructuredOutputsParams.
template <typename Json>
Status AddObject(Found& found, std::string_view name, const Json& object, Surface surface) {
  if (!object.is_object()) return jf::FieldError(name, "must be an object");
  for (const auto& [key, v] : object.items()) {
    const std::string field = std::string(name) + "." + key;
    if (v.is_null() || In(kIgnoredOptions, key)) continue;
    if (In(kObjectConstraints, key)) {
      RETURN_IF_ERROR(AddConstraint(found, key, field, v, surface));
    } else if (In(kRefusedOptions, key)) {
      if (v != false) return Unsupported("'" + field + "' is not supported");
    } else {
      return jf::FieldError(name, "has an unknown field '" + key.substr(0, 64) + "'");
    }
  }
  return Status::Ok();
}

// OpenAI's response_format: text, json_object, json_schema.
template <typename Json>
Status AddResponseFormat(Found& found, const Json& f) {
  if (!f.is_object() || !f.contains("type") || !At(f, "type").is_string())
    return jf::FieldError("response_format", "must be an object with a string 'type'");
  const std::string type = At(f, "type").template get<std::string>();
  if (type == "text") return Status::Ok();
  if (type == "json_object") return found.Add("response_format", Kind::kJsonObject, "");
  if (type == "structural_tag")
    return Unsupported("'response_format' of type 'structural_tag' is not supported");
  if (type != "json_schema")
    return jf::FieldError("response_format",
                          "type must be 'text', 'json_object' or "
                          "'json_schema', got '" +
                              type.substr(0, 64) + "'");
  if (!Has(f, "json_schema") || !At(f, "json_schema").is_object())
    return jf::FieldError("response_format.json_schema", "is required (an object)");
  const Json& s = At(f, "json_schema");
  if (Has(s, "name") && !At(s, "name").is_string())
    return jf::FieldError("response_format.json_schema.name", "must be a string");
  if (Has(s, "strict") && !At(s, "strict").is_boolean())
    return jf::FieldError("response_format.json_schema.strict", "must be a boolean");
  // Strict or not, the output is held to the schema (OpenAI only promises it when strict).
  if (!Has(s, "schema")) return jf::FieldError("response_format.json_schema.schema", "is required");
  return AddSchema(found, "response_format.json_schema.schema", At(s, "schema"));
}

}  // namespace

bool IsStructuredOutputField(std::string_view key, Surface surface) {
  if (In(kGuidedFields, key) || key == kStructuredOutputs) return true;
  return surface == Surface::kTriton ? key == kGuidedDecoding : key == "response_format";
}

template <typename Json>
Result<std::optional<StructuredOutput>> ParseStructuredOutput(const Json& object, Surface surface) {
  Found found;
  if (!object.is_object()) return found.Take();
  for (std::string_view key : kGuidedFields) {
    if (Has(object, key))
      RETURN_IF_ERROR(AddConstraint(found, key, std::string(key), At(object, key), surface));
  }
  for (std::string_view name : {kStructuredOutputs, kGuidedDecoding}) {
    if (name == kGuidedDecoding && surface != Surface::kTriton) continue;
    if (Has(object, name)) RETURN_IF_ERROR(AddObject(found, name, At(object, name), surface));
  }
  if (surface == Surface::kOpenAI && Has(object, "response_format"))
    RETURN_IF_ERROR(AddResponseFormat(found, At(object, "response_format")));
  return found.Take();
}

template Result<std::optional<StructuredOutput>> ParseStructuredOutput(const nlohmann::json&,
                                                                       Surface);
template Result<std::optional<StructuredOutput>> ParseStructuredOutput(
    const nlohmann::ordered_json&, Surface);

}  // namespace sluice::llm_contract

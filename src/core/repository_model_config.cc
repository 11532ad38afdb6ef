#include "core/repository_model_config.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/stubs/common.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/repository_path_guard.h"

namespace sluice::core {
namespace {

namespace pb = google::protobuf;

// Keeps the first error of a text-format parse, with 1-based line and column, and turns
// protobuf's wording for the common cases into Sluice's ("unknown field 'x' in T").
class FirstErrorCollector : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    if (has_error_) return;
    has_error_ = true;
    line_ = line + 1;
    column_ = column + 1;
    message_ = Reword(message);
  }

  bool has_error() const { return has_error_; }
  std::string Describe(std::string_view file_label) const {
    return std::string(file_label) + ":" + std::to_string(line_) + ":" + std::to_string(column_) +
           ": " + message_;
  }

 private:
  // Protobuf 3.21: 'Message type "inference.ModelConfig" has no field named "max_batch".'
  static std::string Reword(const std::string& message) {
    static constexpr std::string_view kType = "Message type \"";
    static constexpr std::string_view kNoField = "\" has no field named \"";
    if (message.rfind(kType, 0) == 0) {
      const size_t type_end = message.find(kNoField);
      if (type_end != std::string::npos) {
        const std::string type = message.substr(kType.size(), type_end - kType.size());
        const size_t name_begin = type_end + kNoField.size();
        const size_t name_end = message.find('"', name_begin);
        if (name_end != std::string::npos) {
          return "unknown field '" +
                 EscapeForMessage(
                     std::string_view(message).substr(name_begin, name_end - name_begin)) +
                 "' in " + type;
        }
      }
    }
    std::string out = message;
    if (!out.empty() && out.back() == '.') out.pop_back();
    return EscapeForMessage(out);
  }

  bool has_error_ = false;
  int line_ = 0;
  int column_ = 0;
  std::string message_;
};

// proto3 JSON writes 64-bit integers as strings; Triton's /config writes them as numbers
// (its ModelConfigToJson fixes them up). Walks `json` alongside the message descriptor.
void Int64StringsToNumbers(const pb::Descriptor* descriptor, nlohmann::ordered_json& json);

void FixValue(const pb::FieldDescriptor* field, nlohmann::ordered_json& value) {
  switch (field->cpp_type()) {
    case pb::FieldDescriptor::CPPTYPE_INT64:
      if (value.is_string()) value = std::stoll(value.get<std::string>());
      break;
    case pb::FieldDescriptor::CPPTYPE_UINT64:
      if (value.is_string()) value = std::stoull(value.get<std::string>());
      break;
    case pb::FieldDescriptor::CPPTYPE_MESSAGE:
      if (value.is_object()) Int64StringsToNumbers(field->message_type(), value);
      break;
    case pb::FieldDescriptor::CPPTYPE_INT32:
    case pb::FieldDescriptor::CPPTYPE_UINT32:
    case pb::FieldDescriptor::CPPTYPE_DOUBLE:
    case pb::FieldDescriptor::CPPTYPE_FLOAT:
    case pb::FieldDescriptor::CPPTYPE_BOOL:
    case pb::FieldDescriptor::CPPTYPE_ENUM:
    case pb::FieldDescriptor::CPPTYPE_STRING:
      break;
  }
}

void Int64StringsToNumbers(const pb::Descriptor* descriptor, nlohmann::ordered_json& json) {
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const pb::FieldDescriptor* field = descriptor->field(i);
    auto it = json.find(field->name());
    if (it == json.end()) continue;
    if (field->is_map()) {
      // Keys stay strings (JSON object keys); values may need fixing.
      const pb::FieldDescriptor* value_field = field->message_type()->map_value();
      if (it->is_object()) {
        for (auto& [key, value] : it->items()) FixValue(value_field, value);
      }
    } else if (field->is_repeated()) {
      if (it->is_array()) {
        for (auto& element : *it) FixValue(field, element);
      }
    } else {
      FixValue(field, *it);
    }
  }
}

// Protobuf's JSON errors: the first line only (the rest echoes the input with a caret),
// "x: Cannot find field." as "unknown field 'x'".
std::string RewordJsonError(std::string_view message) {
  std::string_view line = message.substr(0, message.find('\n'));
  while (!line.empty() && (line.back() == '.' || line.back() == ' ')) line.remove_suffix(1);
  if (line.rfind(": ", 0) == 0) line.remove_prefix(2);
  static constexpr std::string_view kNoField = ": Cannot find field";
  if (line.size() > kNoField.size() && line.substr(line.size() - kNoField.size()) == kNoField) {
    return "unknown field '" + EscapeForMessage(line.substr(0, line.size() - kNoField.size())) +
           "'";
  }
  return EscapeForMessage(line);
}

template <typename Io>
Status ValidateDims(const Io& io, const std::string& what, int32_t max_batch_size) {
  if (io.dims_size() == 0) return InvalidArgument(what + " must specify 'dims'");
  if (io.dims_size() > kMaxTensorDims) {
    return InvalidArgument(what + " has " + std::to_string(io.dims_size()) + " dims, more than " +
                           std::to_string(kMaxTensorDims));
  }
  for (int i = 0; i < io.dims_size(); ++i) {
    const int64_t d = io.dims(i);
    if (d < 1 && d != -1) {
      return InvalidArgument(what + ": dims[" + std::to_string(i) + "] = " + std::to_string(d) +
                             " must be >= 1, or -1 for a variable-size dimension");
    }
  }
  if (io.has_reshape()) {
    const auto& shape = io.reshape().shape();
    if (shape.empty() && max_batch_size == 0) {
      return InvalidArgument(what + " cannot have an empty reshape for a non-batching model");
    }
    if (shape.size() > kMaxTensorDims) {
      return InvalidArgument(what + ": reshape has more than " + std::to_string(kMaxTensorDims) +
                             " dims");
    }
    for (int i = 0; i < shape.size(); ++i) {
      if (shape[i] < 1 && shape[i] != -1) {
        return InvalidArgument(what + ": reshape.shape[" + std::to_string(i) +
                               "] = " + std::to_string(shape[i]) +
                               " must be >= 1, or -1 for a variable-size dimension");
      }
    }
  }
  return Status::Ok();
}

template <typename Io>
Status ValidateTensors(const pb::RepeatedPtrField<Io>& tensors, const char* kind,
                       int32_t max_batch_size) {
  if (tensors.size() > kMaxModelTensors) {
    return InvalidArgument(std::string("more than ") + std::to_string(kMaxModelTensors) + " " +
                           kind + "s");
  }
  std::set<std::string> names;
  for (int i = 0; i < tensors.size(); ++i) {
    const Io& io = tensors[i];
    if (io.name().empty()) {
      return InvalidArgument(std::string(kind) + "[" + std::to_string(i) + "] must specify 'name'");
    }
    const std::string what = std::string(kind) + " " + QuoteForMessage(io.name());
    if (!names.insert(io.name()).second) return InvalidArgument(what + " is declared twice");
    if (io.data_type() == inference::TYPE_INVALID) {
      return InvalidArgument(what + " must specify 'data_type'");
    }
    RETURN_IF_ERROR(ValidateDims(io, what, max_batch_size));
  }
  return Status::Ok();
}

inference::ModelInput MakeInput(const char* name, inference::DataType type, bool optional) {
  inference::ModelInput in;
  in.set_name(name);
  in.set_data_type(type);
  in.add_dims(1);
  in.set_optional(optional);
  return in;
}

inference::ModelOutput MakeOutput(const char* name, inference::DataType type, int64_t dim) {
  inference::ModelOutput out;
  out.set_name(name);
  out.set_data_type(type);
  out.add_dims(dim);
  return out;
}

// Every string field of `message` must be valid UTF-8 (proto3 strings are, and the config is
// rendered as JSON and sent over gRPC); the text-format parser does not check. `path` names
// the message ("" for the config), so the error names the field: "input[1].name".
Status CheckUtf8Strings(const pb::Message& message, const std::string& path) {
  const pb::Reflection* reflection = message.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const pb::FieldDescriptor* field : fields) {
    const std::string name = path.empty() ? field->name() : path + "." + field->name();
    const int count = field->is_repeated() ? reflection->FieldSize(message, field) : 1;
    for (int i = 0; i < count; ++i) {
      const std::string where = field->is_repeated() ? name + "[" + std::to_string(i) + "]" : name;
      if (field->type() == pb::FieldDescriptor::TYPE_STRING) {
        std::string scratch;
        const std::string& value = field->is_repeated()
                                       ? reflection->GetRepeatedStringReference(message, field, i, &scratch)
                                       : reflection->GetStringReference(message, field, &scratch);
        if (!pb::internal::IsStructurallyValidUTF8(value.data(), static_cast<int>(value.size())))
          return InvalidArgument(where + " is not valid UTF-8");
      } else if (field->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        const pb::Message& sub = field->is_repeated() ? reflection->GetRepeatedMessage(message, field, i)
                                                      : reflection->GetMessage(message, field);
        RETURN_IF_ERROR(CheckUtf8Strings(sub, where));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<inference::ModelConfig> ParseModelConfigText(std::string_view text,
                                                    std::string_view file_label) {
  if (text.size() > kMaxModelConfigBytes) {
    return InvalidArgument(std::string(file_label) + ": " + std::to_string(text.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(kMaxModelConfigBytes));
  }
  inference::ModelConfig config;
  FirstErrorCollector errors;
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  parser.SetRecursionLimit(kMaxConfigNesting);
  if (!parser.ParseFromString(std::string(text), &config)) {
    if (errors.has_error()) return InvalidArgument(errors.Describe(file_label));
    return InvalidArgument(std::string(file_label) + ": cannot be parsed");
  }
  if (Status st = CheckUtf8Strings(config, ""); !st.ok()) return st.WithPrefix(std::string(file_label));
  return config;
}

Result<inference::ModelConfig> ParseModelConfigJson(std::string_view json) {
  if (json.size() > kMaxModelConfigBytes) {
    return InvalidArgument("invalid model config JSON: " + std::to_string(json.size()) +
                           " bytes, more than the limit of " +
                           std::to_string(kMaxModelConfigBytes));
  }
  inference::ModelConfig config;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status =
      pb::util::JsonStringToMessage(pb::StringPiece(json.data(), json.size()), &config, options);
  if (!status.ok())
    return InvalidArgument("invalid model config JSON: " +
                           RewordJsonError(std::string(status.message())));
  if (Status st = CheckUtf8Strings(config, ""); !st.ok()) return st.WithPrefix("invalid model config JSON");
  return config;
}

Result<std::string> ModelConfigToJson(const inference::ModelConfig& config) {
  std::string out;
  pb::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  const auto status = pb::util::MessageToJsonString(config, &out, options);
  if (!status.ok()) return Internal("model config to JSON: " + std::string(status.message()));
  // Field order is kept (ordered_json), as Triton's output has it. Protobuf's output is
  // valid JSON with in-range integers; nlohmann's exceptions cannot
  // escape, but catch them at this edge anyway.
  try {
    nlohmann::ordered_json json = nlohmann::ordered_json::parse(out);
    Int64StringsToNumbers(inference::ModelConfig::descriptor(), json);
    return json.dump();
  } catch (const std::exception& e) {
    return Internal(std::string("model config to JSON: ") + e.what());
  }
}

void AutoCompleteVllmConfig(inference::ModelConfig& config) {
  std::set<std::string> inputs;
  for (const auto& in : config.input()) inputs.insert(in.name());
  std::set<std::string> outputs;
  for (const auto& out : config.output()) outputs.insert(out.name());
  const inference::ModelInput kInputs[] = {
      MakeInput("text_input", inference::TYPE_STRING, false),
      MakeInput("stream", inference::TYPE_BOOL, true),
      MakeInput("sampling_parameters", inference::TYPE_STRING, true),
      MakeInput("exclude_input_in_output", inference::TYPE_BOOL, true),
      MakeInput("return_finish_reason", inference::TYPE_BOOL, true),
      MakeInput("return_cumulative_logprob", inference::TYPE_BOOL, true),
      MakeInput("return_logprobs", inference::TYPE_BOOL, true),
      MakeInput("return_num_input_tokens", inference::TYPE_BOOL, true),
      MakeInput("return_num_output_tokens", inference::TYPE_BOOL, true),
  };
  const inference::ModelOutput kOutputs[] = {
      MakeOutput("text_output", inference::TYPE_STRING, -1),
      MakeOutput("finish_reason", inference::TYPE_STRING, -1),
      MakeOutput("cumulative_logprob", inference::TYPE_FP32, -1),
      MakeOutput("logprobs", inference::TYPE_STRING, -1),
      MakeOutput("num_input_tokens", inference::TYPE_UINT32, 1),
      MakeOutput("num_output_tokens", inference::TYPE_UINT32, -1),
  };
  for (const auto& in : kInputs) {
    if (inputs.count(in.name()) == 0) *config.add_input() = in;
  }
  for (const auto& out : kOutputs) {
    if (outputs.count(out.name()) == 0) *config.add_output() = out;
  }
  config.mutable_model_transaction_policy()->set_decoupled(true);
  config.set_max_batch_size(0);
}

Status NormalizeModelConfig(std::string_view model_name, inference::ModelConfig& config) {
  if (config.name().empty()) {
    config.set_name(std::string(model_name));
  } else if (config.name() != model_name) {
    return InvalidArgument("config name " + QuoteForMessage(config.name()) +
                           " does not match the model name " + QuoteForMessage(model_name));
  }
  if (config.backend() == "vllm") AutoCompleteVllmConfig(config);

  const int32_t max_batch_size = config.max_batch_size();
  if (max_batch_size < 0) {
    return InvalidArgument("max_batch_size = " + std::to_string(max_batch_size) + " must be >= 0");
  }
  RETURN_IF_ERROR(ValidateTensors(config.input(), "input", max_batch_size));
  RETURN_IF_ERROR(ValidateTensors(config.output(), "output", max_batch_size));

  // Version policy: none -> latest{1}; latest{0} -> latest{1}.
  auto* policy = config.mutable_version_policy();
  switch (policy->policy_choice_case()) {
    case inference::ModelVersionPolicy::POLICY_CHOICE_NOT_SET:
      policy->mutable_latest()->set_num_versions(1);
      break;
    case inference::ModelVersionPolicy::kLatest:
      if (policy->latest().num_versions() == 0) policy->mutable_latest()->set_num_versions(1);
      break;
    case inference::ModelVersionPolicy::kAll:
      break;
    case inference::ModelVersionPolicy::kSpecific:
      if (policy->specific().versions_size() == 0) {
        return InvalidArgument("version_policy.specific must list at least one version");
      }
      for (int64_t v : policy->specific().versions()) {
        if (v < 0) {
          return InvalidArgument("version_policy.specific: version " + std::to_string(v) +
                                 " must be >= 0");
        }
      }
      break;
  }

  // Instance groups: Triton's defaults.
  if (config.instance_group_size() == 0) config.add_instance_group();
  for (int i = 0; i < config.instance_group_size(); ++i) {
    auto* group = config.mutable_instance_group(i);
    if (group->name().empty()) group->set_name(config.name() + "_" + std::to_string(i));
    const std::string what = "instance_group " + QuoteForMessage(group->name());
    if (group->count() == 0) group->set_count(1);
    if (!inference::ModelInstanceGroup::Kind_IsValid(group->kind())) {
      return InvalidArgument(what + ": unknown kind " + std::to_string(group->kind()));
    }
    if (group->count() < 0 || group->count() > kMaxInstanceCount) {
      return InvalidArgument(what + ": count = " + std::to_string(group->count()) +
                             " must be between 1 and " + std::to_string(kMaxInstanceCount));
    }
    // Not a switch: protobuf's enum has sentinel values that -Wswitch would demand.
    const bool may_name_gpus = group->kind() == inference::ModelInstanceGroup::KIND_AUTO ||
                               group->kind() == inference::ModelInstanceGroup::KIND_GPU;
    if (!may_name_gpus && group->gpus_size() > 0) {
      return InvalidArgument(what + ": 'gpus' is only valid for KIND_GPU and KIND_AUTO");
    }
    for (int32_t gpu : group->gpus()) {
      if (gpu < 0) return InvalidArgument(what + ": gpu " + std::to_string(gpu) + " must be >= 0");
    }
  }

  if (config.has_dynamic_batching()) {
    for (int32_t size : config.dynamic_batching().preferred_batch_size()) {
      if (size < 1 || size > max_batch_size) {
        return InvalidArgument("dynamic_batching: preferred_batch_size " + std::to_string(size) +
                               " must be between 1 and max_batch_size (" +
                               std::to_string(max_batch_size) + ")");
      }
    }
  }

  for (const auto& [key, value] : config.parameters()) {
    if (key.empty()) return InvalidArgument("parameters: a key is empty");
  }
  return Status::Ok();
}

}  // namespace sluice::core

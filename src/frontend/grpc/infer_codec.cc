#include "frontend/grpc/infer_codec.h"

#include <charconv>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "common/tensor.h"

namespace sluice::grpc_frontend {
namespace {

template <typename T>
void AppendLittleEndian(std::string& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 and aarch64 are little-endian
  out.append(bytes, sizeof(T));
}

// Copies typed values into `out` as `Target`, refusing values outside Target's range.
template <typename Target, typename Source>
Status AppendChecked(const google::protobuf::RepeatedField<Source>& values, const std::string& name,
                     std::string& out) {
  out.reserve(static_cast<size_t>(values.size()) * sizeof(Target));
  for (int i = 0; i < values.size(); ++i) {
    const Source v = values.Get(i);
    if constexpr (std::is_integral_v<Source> && !std::is_same_v<Source, bool> &&
                  !std::is_same_v<Target, Source>) {
      if (!std::in_range<Target>(v))
        return InvalidArgument("input '" + name + "': element " + std::to_string(i) + " value " +
                               std::to_string(v) + " is out of range for its datatype");
    }
    AppendLittleEndian<Target>(out, static_cast<Target>(v));
  }
  return Status::Ok();
}

// Converts an input's typed `contents` to Sluice's byte layout for `tensor.datatype`.
Status DecodeTypedContents(const inference::InferTensorContents& c, Tensor& tensor, int64_t count) {
  const std::string& name = tensor.name;
  std::string& out = tensor.data;
  int64_t given = 0;
  Status st;
  switch (tensor.datatype) {
    case DataType::kBool:
      given = c.bool_contents_size();
      st = AppendChecked<uint8_t>(c.bool_contents(), name, out);
      break;
    case DataType::kInt8:
      given = c.int_contents_size();
      st = AppendChecked<int8_t>(c.int_contents(), name, out);
      break;
    case DataType::kInt16:
      given = c.int_contents_size();
      st = AppendChecked<int16_t>(c.int_contents(), name, out);
      break;
    case DataType::kInt32:
      given = c.int_contents_size();
      st = AppendChecked<int32_t>(c.int_contents(), name, out);
      break;
    case DataType::kInt64:
      given = c.int64_contents_size();
      st = AppendChecked<int64_t>(c.int64_contents(), name, out);
      break;
    case DataType::kUint8:
      given = c.uint_contents_size();
      st = AppendChecked<uint8_t>(c.uint_contents(), name, out);
      break;
    case DataType::kUint16:
      given = c.uint_contents_size();
      st = AppendChecked<uint16_t>(c.uint_contents(), name, out);
      break;
    case DataType::kUint32:
      given = c.uint_contents_size();
      st = AppendChecked<uint32_t>(c.uint_contents(), name, out);
      break;
    case DataType::kUint64:
      given = c.uint64_contents_size();
      st = AppendChecked<uint64_t>(c.uint64_contents(), name, out);
      break;
    case DataType::kFp32:
      given = c.fp32_contents_size();
      st = AppendChecked<float>(c.fp32_contents(), name, out);
      break;
    case DataType::kFp64:
      given = c.fp64_contents_size();
      st = AppendChecked<double>(c.fp64_contents(), name, out);
      break;
    case DataType::kBytes:
      given = c.bytes_contents_size();
      for (const std::string& element : c.bytes_contents()) {
        if (element.size() > std::numeric_limits<uint32_t>::max())
          return InvalidArgument("input '" + name + "': BYTES element longer than 4 GiB");
        AppendBytesElement(out, element);
      }
      break;
    case DataType::kFp16:
    case DataType::kBf16:
      return InvalidArgument("input '" + name + "': " + std::string(DataTypeName(tensor.datatype)) +
                             " data must be sent in raw_input_contents");
    case DataType::kInvalid:
      return InvalidArgument("input '" + name + "' has no datatype");
  }
  RETURN_IF_ERROR(st);
  if (given != count)
    return InvalidArgument("input '" + name + "': shape " + ShapeToString(tensor.shape) +
                           " needs " + std::to_string(count) + " elements, contents has " +
                           std::to_string(given));
  return Status::Ok();
}

bool HasTypedContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

}  // namespace

std::string VersionString(int64_t version) {
  return version < 0 ? std::string() : std::to_string(version);
}

Result<int64_t> ParseVersion(const std::string& version) {
  if (version.empty()) return int64_t{-1};
  int64_t v = 0;
  auto [end, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (ec != std::errc() || end != version.data() + version.size() || v < 0)
    return InvalidArgument("invalid model version '" + version.substr(0, 32) + "'");
  return v;
}

Result<Parameters> ParseParameters(const ProtoParameters& params) {
  Parameters out;
  for (const auto& [key, p] : params) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam:
        out[key] = p.bool_param();
        break;
      case inference::InferParameter::kInt64Param:
        out[key] = p.int64_param();
        break;
      case inference::InferParameter::kStringParam:
        out[key] = p.string_param();
        break;
      case inference::InferParameter::kDoubleParam:
        out[key] = p.double_param();
        break;
      case inference::InferParameter::kUint64Param:
        if (p.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          return InvalidArgument("parameter '" + key + "': uint64 value " +
                                 std::to_string(p.uint64_param()) + " is too large");
        out[key] = static_cast<int64_t>(p.uint64_param());
        break;
      case inference::InferParameter::PARAMETER_CHOICE_NOT_SET:
        return InvalidArgument("parameter '" + key + "' has no value");
    }
  }
  return out;
}

Result<InferRequest> ParseInferRequest(inference::ModelInferRequest& msg) {
  InferRequest req;
  req.model_name = msg.model_name();
  ASSIGN_OR_RETURN(req.model_version, ParseVersion(msg.model_version()));
  req.id = msg.id();
  ASSIGN_OR_RETURN(req.parameters, ParseParameters(msg.parameters()));

  const bool raw = msg.raw_input_contents_size() > 0;
  if (raw && msg.raw_input_contents_size() != msg.inputs_size())
    return InvalidArgument("expected " + std::to_string(msg.inputs_size()) +
                           " entries in raw_input_contents (one per input), got " +
                           std::to_string(msg.raw_input_contents_size()));
  req.inputs.reserve(static_cast<size_t>(msg.inputs_size()));
  for (int i = 0; i < msg.inputs_size(); ++i) {
    inference::ModelInferRequest::InferInputTensor& in = *msg.mutable_inputs(i);
    Tensor t;
    t.name = in.name();
    auto datatype = ParseDataType(in.datatype());
    if (!datatype)
      return InvalidArgument("input '" + t.name + "': unknown datatype '" +
                             in.datatype().substr(0, 32) + "'");
    t.datatype = *datatype;
    t.shape.assign(in.shape().begin(), in.shape().end());
    auto count = ElementCount(t.shape);
    if (!count.ok()) return count.status().WithPrefix("input '" + t.name + "'");
    const bool typed = in.has_contents() && HasTypedContents(in.contents());
    if (raw) {
      if (typed)
        return InvalidArgument("input '" + t.name +
                               "': contents must not be set when raw_input_contents is used");
      t.data = std::move(*msg.mutable_raw_input_contents(i));
    } else if (typed || *count == 0) {
      RETURN_IF_ERROR(DecodeTypedContents(in.contents(), t, *count));
    } else {
      return InvalidArgument("input '" + t.name + "' has no data");
    }
    RETURN_IF_ERROR(ValidateTensorData(t).WithPrefix("input"));
    req.inputs.push_back(std::move(t));
  }
  for (const auto& out : msg.outputs()) req.requested_outputs.push_back(out.name());
  return req;
}

void SetParameter(ProtoParameters* params, const std::string& key, const ParameterValue& value) {
  inference::InferParameter& p = (*params)[key];
  std::visit(
      [&p](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>)
          p.set_bool_param(v);
        else if constexpr (std::is_same_v<T, int64_t>)
          p.set_int64_param(v);
        else if constexpr (std::is_same_v<T, double>)
          p.set_double_param(v);
        else
          p.set_string_param(v);
      },
      value);
}

void RenderInferResponse(InferResponse& response, inference::ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(VersionString(response.model_version));
  out->set_id(response.id);
  for (const auto& [key, value] : response.parameters)
    SetParameter(out->mutable_parameters(), key, value);
  for (Tensor& t : response.outputs) {
    auto* o = out->add_outputs();
    o->set_name(t.name);
    o->set_datatype(std::string(DataTypeName(t.datatype)));
    for (int64_t d : t.shape) o->add_shape(d);
    out->add_raw_output_contents(std::move(t.data));
  }
}

}  // namespace sluice::grpc_frontend

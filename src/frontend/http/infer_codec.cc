#include "frontend/http/infer_codec.h"

#include <algorithm>
#include <charconv>

#include "frontend/http/json_util.h"
#include "frontend/http/tensor_json.h"

namespace sluice::http {
namespace {

using nlohmann::json;

Result<uint64_t> ParseUnsigned(std::string_view s, const std::string& what) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return InvalidArgument("invalid " + what + " '" + std::string(s.substr(0, 32)) + "'");
  return v;
}

Result<Shape> ParseShape(const json& j, const std::string& name) {
  if (!j.is_array()) return InvalidArgument("input '" + name + "': 'shape' must be an array of integers");
  Shape shape;
  for (const auto& d : j) {
    if (d.is_number_unsigned()) {
      const uint64_t u = d.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX))
        return InvalidArgument("input '" + name + "': dimension " + d.dump() + " is out of range");
      shape.push_back(static_cast<int64_t>(u));
    } else if (d.is_number_integer()) {
      shape.push_back(d.get<int64_t>());
    } else {
      return InvalidArgument("input '" + name + "': 'shape' must be an array of integers");
    }
  }
  return shape;
}

// The binary section of a request body (after Inference-Header-Content-Length) and how much
// of it the inputs decoded so far have taken, in order.
struct BinarySection {
  std::string_view bytes;
  bool declared = false;  // the request has an Inference-Header-Content-Length
  size_t used = 0;
};

// The request's 'id' and 'parameters'; 'binary_data_output' leaves the parameters for the
// output encoding.
Status DecodeRequestHeader(const json& root, DecodedInferRequest* out) {
  InferRequest& req = out->request;
  if (auto it = root.find("id"); it != root.end()) {
    if (!it->is_string()) return InvalidArgument("'id' must be a string");
    req.id = it->get<std::string>();
  }
  if (auto it = root.find("parameters"); it != root.end()) {
    ASSIGN_OR_RETURN(req.parameters, ParametersFromJson(*it, "request"));
    if (auto b = req.parameters.find("binary_data_output"); b != req.parameters.end()) {
      if (!std::holds_alternative<bool>(b->second))
        return InvalidArgument("parameter 'binary_data_output' must be a bool");
      out->encoding.binary_default = std::get<bool>(b->second);
      req.parameters.erase(b);
    }
  }
  return Status::Ok();
}

// An input's 'name', 'datatype' and 'shape' (no data yet).
Result<Tensor> DecodeInputHeader(const json& in) {
  if (!in.is_object()) return InvalidArgument("each input must be a JSON object");
  auto name_it = in.find("name");
  if (name_it == in.end() || !name_it->is_string())
    return InvalidArgument("input without a 'name' string");
  Tensor t;
  t.name = name_it->get<std::string>();
  auto dt_it = in.find("datatype");
  if (dt_it == in.end() || !dt_it->is_string())
    return InvalidArgument("input '" + t.name + "': missing 'datatype'");
  auto dt = ParseDataType(dt_it->get<std::string>());
  if (!dt)
    return InvalidArgument("input '" + t.name + "': unknown datatype '" +
                           dt_it->get<std::string>().substr(0, 32) + "'");
  t.datatype = *dt;
  auto shape_it = in.find("shape");
  if (shape_it == in.end()) return InvalidArgument("input '" + t.name + "': missing 'shape'");
  ASSIGN_OR_RETURN(t.shape, ParseShape(*shape_it, t.name));
  return t;
}

// The input's 'parameters.binary_data_size', if it has one.
Result<std::optional<uint64_t>> DecodeBinaryDataSize(const json& in, const std::string& name) {
  std::optional<uint64_t> binary_size;
  if (auto p = in.find("parameters"); p != in.end()) {
    if (!p->is_object())
      return InvalidArgument("input '" + name + "': 'parameters' must be an object");
    if (auto b = p->find("binary_data_size"); b != p->end()) {
      if (!b->is_number_unsigned() && !(b->is_number_integer() && b->get<int64_t>() >= 0))
        return InvalidArgument("input '" + name +
                               "': 'binary_data_size' must be a non-negative integer");
      binary_size = b->get<uint64_t>();
    }
  }
  return binary_size;
}

// The input's data, `count` elements: the next `binary_data_size` bytes of the binary section,
// or its JSON 'data' (`json_size`, the JSON text's size, caps the reservation).
Status DecodeInputData(const json& in, int64_t count, size_t json_size, BinarySection* binary,
                       Tensor* t) {
  ASSIGN_OR_RETURN(std::optional<uint64_t> binary_size, DecodeBinaryDataSize(in, t->name));
  auto data_it = in.find("data");
  if (binary_size) {
    if (data_it != in.end())
      return InvalidArgument("input '" + t->name + "' has both 'data' and 'binary_data_size'");
    if (!binary->declared)
      return InvalidArgument(
          "input '" + t->name +
          "' has 'binary_data_size' but the request has no Inference-Header-Content-Length");
    if (*binary_size > binary->bytes.size() - binary->used)
      return InvalidArgument("input '" + t->name + "': binary_data_size " +
                             std::to_string(*binary_size) + " runs past the end of the body");
    t->data.assign(binary->bytes.substr(binary->used, *binary_size));
    binary->used += *binary_size;
    return Status::Ok();
  }
  if (data_it == in.end()) return InvalidArgument("input '" + t->name + "' has no 'data'");
  int64_t seen = 0;
  const size_t elem = DataTypeSize(t->datatype);
  if (elem > 0) t->data.reserve(std::min(static_cast<size_t>(count) * elem, 8 * json_size));
  RETURN_IF_ERROR(AppendJsonData(*data_it, t->datatype, JsonConversion::kStrict, t->name, count + 1,
                                 &seen, &t->data));
  if (seen != count)
    return InvalidArgument("input '" + t->name + "': shape " + ShapeToString(t->shape) + " needs " +
                           std::to_string(count) + " elements, got " + std::to_string(seen));
  return Status::Ok();
}

// 'outputs': the requested output names and their 'binary_data' choices.
Status DecodeRequestedOutputs(const json& root, DecodedInferRequest* out) {
  auto outputs = root.find("outputs");
  if (outputs == root.end()) return Status::Ok();
  if (!outputs->is_array()) return InvalidArgument("'outputs' must be an array");
  for (const auto& o : *outputs) {
    if (!o.is_object()) return InvalidArgument("each output must be a JSON object");
    auto name_it = o.find("name");
    if (name_it == o.end() || !name_it->is_string())
      return InvalidArgument("output without a 'name' string");
    const std::string name = name_it->get<std::string>();
    out->request.requested_outputs.push_back(name);
    if (auto p = o.find("parameters"); p != o.end()) {
      if (!p->is_object())
        return InvalidArgument("output '" + name + "': 'parameters' must be an object");
      if (auto b = p->find("binary_data"); b != p->end()) {
        if (!b->is_boolean())
          return InvalidArgument("output '" + name + "': 'binary_data' must be a bool");
        out->encoding.binary[name] = b->get<bool>();
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<int64_t> ParseModelVersion(std::string_view version) {
  if (version.empty()) return int64_t{-1};
  auto v = ParseUnsigned(version, "model version");
  if (!v.ok() || *v > static_cast<uint64_t>(INT64_MAX)) return InvalidArgument("invalid model version '" + std::string(version.substr(0, 32)) + "'");
  return static_cast<int64_t>(*v);
}

Result<int64_t> CheckShape(const std::string& tensor, const Shape& shape, const RequestLimits& limits) {
  if (shape.size() > limits.max_tensor_rank)
    return InvalidArgument("tensor '" + tensor + "': rank " + std::to_string(shape.size()) +
                           " exceeds the limit of " + std::to_string(limits.max_tensor_rank));
  auto count = ElementCount(shape, limits.max_tensor_elements);
  if (!count.ok()) return count.status().WithPrefix("tensor '" + tensor + "'");
  return *count;
}

Result<DecodedInferRequest> DecodeInferRequest(std::string_view body, std::string_view header_length,
                                               const RequestLimits& limits) {
  std::string_view json_text = body;
  BinarySection binary;
  if (!header_length.empty()) {
    ASSIGN_OR_RETURN(uint64_t n, ParseUnsigned(header_length, "Inference-Header-Content-Length"));
    if (n > body.size())
      return InvalidArgument("Inference-Header-Content-Length " + std::to_string(n) +
                             " exceeds the body size of " + std::to_string(body.size()) + " bytes");
    json_text = body.substr(0, n);
    binary.bytes = body.substr(n);
    binary.declared = true;
  }
  ASSIGN_OR_RETURN(json root, ParseJsonBounded(json_text, limits.max_json_depth));
  if (!root.is_object()) return InvalidArgument("inference request must be a JSON object");

  DecodedInferRequest out;
  RETURN_IF_ERROR(DecodeRequestHeader(root, &out));
  auto inputs = root.find("inputs");
  if (inputs == root.end() || !inputs->is_array())
    return InvalidArgument("'inputs' must be an array");
  for (const auto& in : *inputs) {
    ASSIGN_OR_RETURN(Tensor t, DecodeInputHeader(in));
    ASSIGN_OR_RETURN(int64_t count, CheckShape(t.name, t.shape, limits));
    RETURN_IF_ERROR(DecodeInputData(in, count, json_text.size(), &binary, &t));
    RETURN_IF_ERROR(ValidateTensorData(t));
    out.request.inputs.push_back(std::move(t));
  }
  if (binary.used != binary.bytes.size())
    return InvalidArgument("binary tensor data is " + std::to_string(binary.bytes.size()) +
                           " bytes but inputs use " + std::to_string(binary.used));
  RETURN_IF_ERROR(DecodeRequestedOutputs(root, &out));
  return out;
}

Result<EncodedInferResponse> EncodeInferResponse(const InferResponse& response, const OutputEncoding& encoding) {
  json root = json::object();
  if (!response.id.empty()) root["id"] = response.id;
  root["model_name"] = response.model_name;
  root["model_version"] = std::to_string(response.model_version);
  if (!response.parameters.empty()) root["parameters"] = ParametersToJson(response.parameters);
  json outputs = json::array();
  std::string binary;
  for (const Tensor& t : response.outputs) {
    json o = json::object();
    o["name"] = t.name;
    o["datatype"] = std::string(DataTypeName(t.datatype));
    o["shape"] = t.shape;
    if (encoding.IsBinary(t.name)) {
      RETURN_IF_ERROR(ValidateTensorData(t));
      o["parameters"] = json{{"binary_data_size", t.data.size()}};
      binary += t.data;
    } else {
      ASSIGN_OR_RETURN(o["data"], TensorToJsonArray(t));
    }
    outputs.push_back(std::move(o));
  }
  root["outputs"] = std::move(outputs);
  EncodedInferResponse out;
  out.body = DumpJson(root);
  if (!binary.empty() || encoding.binary_default ||
      std::any_of(encoding.binary.begin(), encoding.binary.end(), [](const auto& kv) { return kv.second; })) {
    out.json_length = out.body.size();
    out.body += binary;
  }
  return out;
}

}  // namespace sluice::http

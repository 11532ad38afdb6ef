#include "frontend/http/generate_request.h"

#include <algorithm>

#include "frontend/http/infer_codec.h"
#include "frontend/http/json_util.h"
#include "frontend/http/tensor_json.h"

namespace sluice::http {
namespace {

using nlohmann::json;

// Builds the input tensor for `value` from the input's metadata: a scalar becomes one
// element, an array its flattened elements; shape [n], or [1, ..., n] for a batched input.
Result<Tensor> InputFromJson(const core::TensorMetadata& meta, const json& value, const RequestLimits& limits) {
  Tensor t;
  t.name = meta.name;
  t.datatype = meta.datatype;
  int64_t count = 0;
  RETURN_IF_ERROR(
      AppendJsonData(value, meta.datatype, JsonConversion::kLenient, meta.name, limits.max_tensor_elements, &count, &t.data));
  const size_t rank = std::max<size_t>(meta.shape.size(), 1);
  t.shape.assign(rank, 1);
  t.shape.back() = count;
  RETURN_IF_ERROR(CheckShape(t.name, t.shape, limits).status());
  return t;
}

}  // namespace

Result<InferRequest> ParseGenerateRequest(const core::ModelMetadata& metadata, std::string_view body,
                                          const RequestLimits& limits) {
  ASSIGN_OR_RETURN(json parsed, ParseJsonBounded(body, limits.max_json_depth));
  if (!parsed.is_object()) return InvalidArgument("generate request must be a JSON object");

  InferRequest out;
  for (const auto& [key, value] : parsed.items()) {
    const core::TensorMetadata* input = nullptr;
    for (const auto& m : metadata.inputs)
      if (m.name == key) input = &m;
    if (input) {
      ASSIGN_OR_RETURN(Tensor t, InputFromJson(*input, value, limits));
      out.inputs.push_back(std::move(t));
    } else if (key == "parameters" && value.is_object()) {
      ASSIGN_OR_RETURN(Parameters p, ParametersFromJson(value, "generate request"));
      for (auto& [k, v] : p) out.parameters[k] = std::move(v);
    } else {
      ASSIGN_OR_RETURN(out.parameters[key], ParameterFromJson(value, key));
    }
  }
  return out;
}

}  // namespace sluice::http

#include "core/request_validator.h"

#include <set>
#include <string>

namespace sluice::core {
namespace {

std::string Quote(const std::string& s) { return "'" + s + "'"; }

bool ShapeMatches(const Shape& shape, const google::protobuf::RepeatedField<int64_t>& dims) {
  if (shape.size() != static_cast<size_t>(dims.size())) return false;
  for (int i = 0; i < dims.size(); ++i)
    if (dims[i] != -1 && dims[i] != shape[i]) return false;
  return true;
}

std::string DimsToString(const google::protobuf::RepeatedField<int64_t>& dims, bool batch) {
  Shape s;
  if (batch) s.push_back(-1);
  s.insert(s.end(), dims.begin(), dims.end());
  return ShapeToString(s);
}

}  // namespace

Status ValidateRequest(const inference::ModelConfig& config, const InferRequest& request,
                       const RequestLimits& limits) {
  const std::string model = "model " + Quote(config.name());
  const bool batching = config.max_batch_size() > 0;
  std::set<std::string> seen;
  int64_t batch_size = -1;
  for (const Tensor& t : request.inputs) {
    if (!seen.insert(t.name).second)
      return InvalidArgument("input " + Quote(t.name) + " appears more than once in the request for " + model);
    const inference::ModelInput* spec = nullptr;
    for (const auto& in : config.input())
      if (in.name() == t.name) spec = &in;
    if (spec == nullptr)
      return InvalidArgument("unexpected inference input " + Quote(t.name) + " for " + model);
    if (static_cast<int64_t>(t.shape.size()) > limits.max_tensor_rank)
      return InvalidArgument("input " + Quote(t.name) + " has rank " + std::to_string(t.shape.size()) +
                             ", more than the limit of " + std::to_string(limits.max_tensor_rank));
    auto count = ElementCount(t.shape, limits.max_tensor_elements);
    if (!count.ok()) return count.status().WithPrefix("input " + Quote(t.name));
    auto expected_type = ParseConfigDataType(inference::DataType_Name(spec->data_type()));
    if (!expected_type || *expected_type != t.datatype)
      return InvalidArgument("inference input " + Quote(t.name) + " data-type is '" +
                             std::string(DataTypeName(t.datatype)) + "', but model " +
                             Quote(config.name()) + " expects '" +
                             std::string(expected_type ? DataTypeName(*expected_type) : "INVALID") + "'");
    Shape shape = t.shape;
    if (batching) {
      if (shape.empty())
        return InvalidArgument("input " + Quote(t.name) + " needs a batch dimension for " + model);
      if (shape[0] < 1 || shape[0] > config.max_batch_size())
        return InvalidArgument("inference request batch-size must be <= " +
                               std::to_string(config.max_batch_size()) + " for " + model + ", got " +
                               std::to_string(shape[0]));
      if (batch_size >= 0 && shape[0] != batch_size)
        return InvalidArgument("inputs of the request for " + model + " disagree on the batch size");
      batch_size = shape[0];
      shape.erase(shape.begin());
    }
    // A reshape in the config means the client may send the reshaped form as well.
    if (!ShapeMatches(shape, spec->dims()) &&
        !(spec->has_reshape() && ShapeMatches(shape, spec->reshape().shape())))
      return InvalidArgument("unexpected shape for input " + Quote(t.name) + " for " + model +
                             ". Expected " + DimsToString(spec->dims(), batching) + ", got " +
                             ShapeToString(t.shape));
    RETURN_IF_ERROR(ValidateTensorData(t));
  }
  for (const auto& in : config.input()) {
    if (!in.optional() && !seen.count(in.name()))
      return InvalidArgument("expected input " + Quote(in.name()) + " for " + model +
                             ", but the request does not have it");
  }
  for (const std::string& name : request.requested_outputs) {
    bool known = false;
    for (const auto& out : config.output()) known = known || out.name() == name;
    if (!known) return InvalidArgument("unexpected inference output " + Quote(name) + " for " + model);
  }
  return Status::Ok();
}

}  // namespace sluice::core

// gRPC ModelInferRequest messages (frontend/grpc/infer_codec.h): the input is the protobuf
// wire bytes as gRPC hands them to the service. Invariants: a parsed request's tensors are
// consistent with their datatype and shape, and echoing them back renders a response whose
// raw_output_contents are the tensors' bytes.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "common/tensor.h"
#include "frontend/grpc/infer_codec.h"
#include "fuzz_check.h"

namespace {

// libprotobuf logs every string field with invalid UTF-8 it refuses; the fuzzer makes many.
void IgnoreProtobufLog(google::protobuf::LogLevel, const char*, int, const std::string&) {}

// Equal values, doubles compared by bit pattern (NaN is a valid parameter).
bool SameParameters(const sluice::Parameters& a, const sluice::Parameters& b) {
  if (a.size() != b.size()) return false;
  for (auto ia = a.begin(), ib = b.begin(); ia != a.end(); ++ia, ++ib) {
    if (ia->first != ib->first || ia->second.index() != ib->second.index()) return false;
    if (const double* da = std::get_if<double>(&ia->second)) {
      if (std::memcmp(da, &std::get<double>(ib->second), sizeof(double)) != 0) return false;
    } else if (ia->second != ib->second) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  static const auto quiet = google::protobuf::SetLogHandler(&IgnoreProtobufLog);
  (void)quiet;
  inference::ModelInferRequest msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto request = grpc_frontend::ParseInferRequest(msg);
  if (!request.ok()) {
    FUZZ_CHECK(!request.status().message().empty(), "an error without a message");
    return 0;
  }
  InferResponse response;
  response.model_name = request->model_name;
  response.model_version = request->model_version;
  response.id = request->id;
  response.parameters = request->parameters;
  std::vector<std::string> bytes;
  for (const Tensor& t : request->inputs) {
    Status valid = ValidateTensorData(t);
    FUZZ_CHECK(valid.ok(), valid.message());
    response.outputs.push_back(t);
    bytes.push_back(t.data);
  }
  inference::ModelInferResponse out;
  grpc_frontend::RenderInferResponse(response, &out);
  FUZZ_CHECK(out.outputs_size() == static_cast<int>(bytes.size()), "output count");
  FUZZ_CHECK(out.raw_output_contents_size() == static_cast<int>(bytes.size()), "raw output count");
  for (size_t i = 0; i < bytes.size(); ++i)
    FUZZ_CHECK(out.raw_output_contents(static_cast<int>(i)) == bytes[i], "raw output bytes differ");
  auto params = grpc_frontend::ParseParameters(out.parameters());
  FUZZ_CHECK(params.ok() && SameParameters(*params, request->parameters), "parameters do not round-trip");
  return 0;
}

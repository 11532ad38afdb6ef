#pragma once
// gRPC clients for Triton's inference.GRPCInferenceService, for tools and tests:
// StreamInferClient wraps one bidirectional ModelStreamInfer call; the free functions build
// requests from KServe-style JSON tensors and read typed outputs back.
//
//   auto channel = MakeChannel("127.0.0.1:8001");
//   auto stream = StreamInferClient::Open(channel);
//   (*stream)->Write(*RequestFromJson("repeat", R"({"inputs":[...]})"_json));
//   while (auto r = (*stream)->Read()) { if (!r.ok() || !*r) break; ... IsFinal((*r)->infer_response()) }
//   grpc::Status st = (*stream)->Finish();

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "grpc_service.grpc.pb.h"

namespace sluice::client {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// A gRPC status as a Sluice status (CANCELLED -> kCancelled, UNAVAILABLE -> kUnavailable...).
Status FromGrpcStatus(const grpc::Status& status);

struct StreamOptions {
  std::optional<std::chrono::milliseconds> deadline;  // for the whole call
  std::vector<std::pair<std::string, std::string>> metadata;  // e.g. {"triton_grpc_error","true"}
};

class StreamInferClient {
 public:
  static Result<std::unique_ptr<StreamInferClient>> Open(
      const std::shared_ptr<grpc::Channel>& channel, const StreamOptions& options = {});
  ~StreamInferClient();

  // Sends one request on the stream. An error when the stream is broken.
  Status Write(const inference::ModelInferRequest& request);
  // The next response; nullopt once the server has closed the stream (then call Finish).
  Result<std::optional<inference::ModelStreamInferResponse>> Read();
  // No more requests from this side (the server may still respond).
  void WritesDone();
  // Cancels the call (thread-safe; may be called while another thread blocks in Read).
  void Cancel();
  // The call's final status. Call after Read returned nullopt (or after Cancel).
  grpc::Status Finish();

 private:
  StreamInferClient() = default;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<inference::ModelInferRequest,
                                           inference::ModelStreamInferResponse>>
      call_;
  bool writes_done_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

// Builds a request from a KServe v2 JSON body: {"id", "parameters", "inputs": [{"name",
// "datatype", "shape", "data"}], "outputs": [{"name"}]}. Tensor data goes into
// raw_input_contents (BYTES elements length-prefixed). Supported datatypes: BOOL, INT8..64,
// UINT8..64, FP32, FP64, BYTES. Bounded: element counts must match the shape.
Result<inference::ModelInferRequest> RequestFromJson(std::string_view model,
                                                     const nlohmann::json& body);

// A request's or response's parameter as JSON (null when absent).
nlohmann::json ParameterValue(
    const google::protobuf::Map<std::string, inference::InferParameter>& params,
    const std::string& name);

// True when the response carries triton_final_response = true.
bool IsFinalResponse(const inference::ModelInferResponse& response);

// Every output of a response decoded to JSON: {"NAME": [values...], ...} (flattened; BYTES as
// strings). Bounded by the raw contents' sizes.
Result<nlohmann::json> OutputsToJson(const inference::ModelInferResponse& response);

}  // namespace sluice::client

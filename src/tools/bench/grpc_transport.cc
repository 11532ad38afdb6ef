#ifdef SLUICE_HAVE_GRPC_SERVICE
#include "tools/bench/grpc_transport.h"

#include "tools/client/grpc/stream_infer_client.h"

namespace sluice::bench {

namespace {

class GrpcTransport : public Transport {
 public:
  GrpcTransport(const GrpcTransportConfig& config, std::shared_ptr<grpc::Channel> channel)
      : config_(config), channel_(std::move(channel)) {}

  RequestResult Send(const BenchRequest& request, Clock::time_point bench_start) override {
    nlohmann::json body = {
        {"inputs",
         {{{"name", "text_input"}, {"datatype", "BYTES"}, {"shape", {1}},
           {"data", {request.prompt}}},
          {{"name", "stream"}, {"datatype", "BOOL"}, {"shape", {1}}, {"data", {true}}},
          {{"name", "sampling_parameters"}, {"datatype", "BYTES"}, {"shape", {1}},
           {"data", {SamplingParameters(request, config_.sampling)
                         .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}}}}}};
    Clock::time_point start = Clock::now();
    RequestTimeline timeline(start, /*streamed=*/true, request.prompt_tokens, config_.keep_text);
    auto fail = [&](std::string error) {
      return timeline.Fail(Clock::now(), bench_start, std::move(error));
    };
    auto req = client::RequestFromJson(config_.model, body);
    if (!req.ok()) return fail(req.status().ToString());
    client::StreamOptions options;
    options.deadline = config_.timeout;
    auto stream = client::StreamInferClient::Open(channel_, options);
    if (!stream.ok()) return fail(stream.status().ToString());
    client::StreamInferClient& call = **stream;
    if (Status st = call.Write(*req); !st.ok()) {
      return fail(client::FromGrpcStatus(call.Finish()).ToString());
    }
    call.WritesDone();
    bool final_seen = false;
    while (!final_seen) {
      auto r = call.Read();
      if (!r.ok()) return fail(r.status().ToString());
      if (!r->has_value()) break;
      Clock::time_point t = Clock::now();
      const auto& msg = **r;
      if (!msg.error_message().empty()) return fail(msg.error_message());
      auto outputs = client::OutputsToJson(msg.infer_response());
      if (!outputs.ok()) return fail(outputs.status().ToString());
      std::string text;
      if (auto it = outputs->find("text_output"); it != outputs->end() && it->is_array()) {
        for (const auto& piece : *it) {
          if (piece.is_string()) text += piece.get<std::string>();
        }
      }
      timeline.OnChunk(t, text);
      final_seen = client::IsFinalResponse(msg.infer_response());
    }
    grpc::Status st = call.Finish();
    if (!final_seen) {
      return fail(st.ok() ? "stream ended without triton_final_response"
                          : client::FromGrpcStatus(st).ToString());
    }
    return timeline.Finish(Clock::now(), bench_start);
  }

 private:
  GrpcTransportConfig config_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace

std::shared_ptr<grpc::Channel> MakeGrpcTransportChannel(const std::string& target) {
  return client::MakeChannel(target);
}

Result<std::unique_ptr<Transport>> MakeGrpcTransport(const GrpcTransportConfig& config,
                                                     std::shared_ptr<grpc::Channel> channel) {
  return std::unique_ptr<Transport>(new GrpcTransport(config, std::move(channel)));
}

}  // namespace sluice::bench
#endif  // SLUICE_HAVE_GRPC_SERVICE

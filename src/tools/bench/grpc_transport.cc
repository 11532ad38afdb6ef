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
    const bool raw = config_.sampling.raw_body.has_value();
    nlohmann::json body = raw ? *config_.sampling.raw_body : nlohmann::json{
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
    // A model outside the LLM contract may flag no response as final: ask for Triton's empty
    // final response, so that the end of the stream is known.
    if (raw) (*req->mutable_parameters())["triton_enable_empty_final_response"].set_bool_param(true);
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
      final_seen = client::IsFinalResponse(msg.infer_response());
      if (!raw) {
        timeline.OnChunk(t, text);
      } else if (msg.infer_response().outputs_size() > 0) {
        timeline.OnResponse(t);  // the empty final response carries no output
      }
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

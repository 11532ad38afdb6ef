// The gRPC half of sluice_client (tensor JSON <-> ModelInferRequest/Response, final flags,
// StreamInferClient with cancel) and the bench's gRPC transport, against an in-process
// GRPCInferenceService that streams like Triton's vLLM backend.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "tools/bench/grpc_transport.h"
#include "tools/client/grpc/stream_infer_client.h"

namespace sluice::client {
namespace {

TEST(TensorJsonTest, RequestEncodesRawContents) {
  auto req = RequestFromJson("repeat", nlohmann::json::parse(R"({
    "id": "r1", "parameters": {"triton_enable_empty_final_response": true, "priority": 2},
    "inputs": [
      {"name": "IN", "datatype": "INT32", "shape": [2, 2], "data": [[1, -2], [3, 4]]},
      {"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["héllo"]},
      {"name": "stream", "datatype": "BOOL", "shape": [1], "data": [true]},
      {"name": "X", "datatype": "FP32", "shape": [1], "data": [0.5]}],
    "outputs": [{"name": "OUT"}]})"));
  ASSERT_TRUE(req.ok()) << req.status().ToString();
  EXPECT_EQ(req->model_name(), "repeat");
  EXPECT_EQ(req->id(), "r1");
  ASSERT_EQ(req->inputs_size(), 4);
  ASSERT_EQ(req->raw_input_contents_size(), 4);
  EXPECT_EQ(req->inputs(0).shape_size(), 2);
  const std::string& in = req->raw_input_contents(0);
  ASSERT_EQ(in.size(), 16u);
  int32_t second;
  std::memcpy(&second, in.data() + 4, 4);
  EXPECT_EQ(second, -2);
  const std::string& text = req->raw_input_contents(1);
  ASSERT_EQ(text.size(), 4u + 6u);  // length prefix + UTF-8 bytes
  EXPECT_EQ(static_cast<unsigned char>(text[0]), 6);
  EXPECT_EQ(text.substr(4), "héllo");
  EXPECT_EQ(req->raw_input_contents(2), std::string(1, '\1'));
  EXPECT_EQ(ParameterValue(req->parameters(), "triton_enable_empty_final_response"), true);
  EXPECT_EQ(ParameterValue(req->parameters(), "priority"), 2);
  EXPECT_EQ(req->outputs(0).name(), "OUT");
}

TEST(TensorJsonTest, BadTensorsAreRefused) {
  auto bad = [](const char* input) {
    return RequestFromJson("m", nlohmann::json::parse(std::string(R"({"inputs": [)") + input +
                                                      "]}"))
        .ok();
  };
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"INT32","shape":[3],"data":[1,2]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"INT8","shape":[1],"data":[300]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"UINT32","shape":[1],"data":[-1]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"FP16","shape":[1],"data":[1]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"INT32","shape":[-1],"data":[]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"BOOL","shape":[1],"data":["yes"]})"));
  EXPECT_FALSE(bad(R"({"name":"A","datatype":"INT32","shape":[4294967296,4294967296],"data":[]})"));
  EXPECT_FALSE(RequestFromJson("m", nlohmann::json::parse(R"({"inputs": {}})")).ok());
}

inference::ModelInferResponse TextResponse(const std::string& text, bool final) {
  inference::ModelInferResponse r;
  auto* out = r.add_outputs();
  out->set_name("text_output");
  out->set_datatype("BYTES");
  out->add_shape(1);
  std::string raw(4, '\0');
  uint32_t n = static_cast<uint32_t>(text.size());
  std::memcpy(raw.data(), &n, 4);
  r.add_raw_output_contents(raw + text);
  (*r.mutable_parameters())["triton_final_response"].set_bool_param(final);
  return r;
}

TEST(TensorJsonTest, ResponsesDecodeAndFinalFlagIsRead) {
  auto r = TextResponse("tok", true);
  EXPECT_TRUE(IsFinalResponse(r));
  EXPECT_FALSE(IsFinalResponse(TextResponse("tok", false)));
  EXPECT_FALSE(IsFinalResponse(inference::ModelInferResponse()));
  auto* idx = r.add_outputs();
  idx->set_name("IDX");
  idx->set_datatype("UINT32");
  std::string raw(8, '\0');
  uint32_t v[2] = {7, 9};
  std::memcpy(raw.data(), v, 8);
  r.add_raw_output_contents(raw);
  auto j = OutputsToJson(r);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["text_output"], nlohmann::json::array({"tok"}));
  EXPECT_EQ((*j)["IDX"], nlohmann::json::array({7, 9}));
  // A BYTES length that overruns the tensor is an error, not a crash.
  inference::ModelInferResponse bad = TextResponse("abc", false);
  bad.mutable_raw_output_contents(0)->resize(5);
  EXPECT_FALSE(OutputsToJson(bad).ok());
  inference::ModelInferResponse odd = r;
  odd.mutable_raw_output_contents(1)->resize(7);
  EXPECT_FALSE(OutputsToJson(odd).ok());
}

// Streams `max_tokens` responses of " t" per request, 5 ms apart, the last one final; stops
// when the call is cancelled and counts that.
class FakeLlmService final : public inference::GRPCInferenceService::Service {
 public:
  std::atomic<int> cancels{0};
  grpc::Status ModelStreamInfer(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<inference::ModelStreamInferResponse, inference::ModelInferRequest>*
          stream) override {
    inference::ModelInferRequest req;
    while (stream->Read(&req)) {
      int max_tokens = 4;
      for (int i = 0; i < req.inputs_size(); ++i) {
        if (req.inputs(i).name() == "sampling_parameters") {
          auto params = nlohmann::json::parse(req.raw_input_contents(i).substr(4));
          max_tokens = params["max_tokens"];
        }
      }
      if (req.model_name() != "llm") {
        inference::ModelStreamInferResponse err;
        err.set_error_message("unknown model '" + req.model_name() + "'");
        stream->Write(err);
        continue;
      }
      for (int t = 0; t < max_tokens; ++t) {
        if (context->IsCancelled()) {
          cancels++;
          return grpc::Status::CANCELLED;
        }
        inference::ModelStreamInferResponse resp;
        *resp.mutable_infer_response() = TextResponse(" t", t + 1 == max_tokens);
        stream->Write(resp);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    return grpc::Status::OK;
  }
};

class GrpcFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = "127.0.0.1:" + std::to_string(port_);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  FakeLlmService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string target_;
};

nlohmann::json LlmBody(int max_tokens) {
  return {{"inputs",
           {{{"name", "text_input"}, {"datatype", "BYTES"}, {"shape", {1}}, {"data", {"hi"}}},
            {{"name", "sampling_parameters"}, {"datatype", "BYTES"}, {"shape", {1}},
             {"data", {nlohmann::json{{"max_tokens", max_tokens}}.dump()}}}}}};
}

TEST_F(GrpcFixture, StreamDeliversResponsesUpToTheFinalOne) {
  auto call = StreamInferClient::Open(MakeChannel(target_));
  ASSERT_TRUE(call.ok());
  ASSERT_TRUE((*call)->Write(*RequestFromJson("llm", LlmBody(3))).ok());
  (*call)->WritesDone();
  int n = 0, finals = 0;
  while (true) {
    auto r = (*call)->Read();
    ASSERT_TRUE(r.ok());
    if (!r->has_value()) break;
    ++n;
    finals += IsFinalResponse((*r)->infer_response()) ? 1 : 0;
  }
  EXPECT_EQ(n, 3);
  EXPECT_EQ(finals, 1);
  EXPECT_TRUE((*call)->Finish().ok());
}

TEST_F(GrpcFixture, CancelEndsTheCallAndTheServerSeesIt) {
  auto call = StreamInferClient::Open(MakeChannel(target_));
  ASSERT_TRUE(call.ok());
  ASSERT_TRUE((*call)->Write(*RequestFromJson("llm", LlmBody(1000))).ok());
  auto first = (*call)->Read();
  ASSERT_TRUE(first.ok() && first->has_value());
  (*call)->Cancel();
  grpc::Status st = (*call)->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 100 && service_.cancels.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service_.cancels.load(), 1);
}

TEST_F(GrpcFixture, BenchTransportMeasuresTokensAndReportsErrors) {
  bench::GrpcTransportConfig cfg;
  cfg.target = target_;
  cfg.model = "llm";
  cfg.keep_text = true;
  auto channel = bench::MakeGrpcTransportChannel(target_);
  auto transport = bench::MakeGrpcTransport(cfg, channel);
  ASSERT_TRUE(transport.ok());
  bench::BenchRequest req{"a b", 2, 6};
  auto start = bench::Clock::now();
  bench::RequestResult r = (*transport)->Send(req, start);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.output_tokens, 6);
  EXPECT_EQ(r.itl_s.size(), 5u);
  EXPECT_EQ(r.generated_text, " t t t t t t");
  EXPECT_GT(r.latency_s, r.ttft_s);
  cfg.model = "nope";
  auto bad = bench::MakeGrpcTransport(cfg, channel);
  bench::RequestResult f = (*bad)->Send(req, start);
  EXPECT_FALSE(f.ok);
  EXPECT_EQ(f.error, "unknown model 'nope'");
}

}  // namespace
}  // namespace sluice::client

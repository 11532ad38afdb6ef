// The gRPC frontend against a fake core, over a real loopback server, through a client
// generated from the repository's proto: every RPC, Triton's stream protocol and
// cancellation.

#include "frontend/grpc/grpc_server.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "common/log_settings.h"
#include "grpc_service.grpc.pb.h"
#include "support/grpc_fake_service.h"

namespace sluice::grpc_frontend {
namespace {

using namespace std::chrono_literals;
using inference::GRPCInferenceService;
using testing::FakeInferenceService;

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  void StartServer(GrpcServerOptions options) {
    auto server = GrpcServer::Create("127.0.0.1:0", fake_, std::move(options));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_GT(server_->port(), 0);
    channel_ = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                     ::grpc::InsecureChannelCredentials());
    stub_ = GRPCInferenceService::NewStub(channel_);
  }

  FakeInferenceService fake_;
  std::unique_ptr<GrpcServer> server_;
  std::shared_ptr<::grpc::Channel> channel_;
  std::unique_ptr<GRPCInferenceService::Stub> stub_;
};

std::string Raw(const std::vector<int32_t>& values) {
  return testing::Int32Tensor("IN", values).data;
}

inference::ModelInferRequest InRequest(const std::string& model, const std::string& id,
                                       const std::vector<int32_t>& values) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id(id);
  auto* in = r.add_inputs();
  in->set_name("IN");
  in->set_datatype("INT32");
  in->add_shape(static_cast<int64_t>(values.size()));
  r.add_raw_input_contents(Raw(values));
  return r;
}

void SetBool(inference::ModelInferRequest& r, const std::string& key, bool v) {
  (*r.mutable_parameters())[key].set_bool_param(v);
}

// The triton_final_response parameter of a response; fails the test when absent.
bool FinalFlag(const inference::ModelInferResponse& r) {
  auto it = r.parameters().find("triton_final_response");
  EXPECT_NE(it, r.parameters().end()) << "response without triton_final_response";
  if (it == r.parameters().end()) return false;
  EXPECT_EQ(it->second.parameter_choice_case(), inference::InferParameter::kBoolParam);
  return it->second.bool_param();
}

TEST_F(GrpcServerTest, ServerLiveAndReadyFollowTheCore) {
  ::grpc::ClientContext c1, c2, c3;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(stub_->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub_->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  fake_.ready = false;
  ASSERT_TRUE(stub_->ServerReady(&c3, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
}

TEST_F(GrpcServerTest, ModelReadyAndUnknownModel) {
  ::grpc::ClientContext c1, c2;
  inference::ModelReadyRequest req;
  req.set_name("identity");
  inference::ModelReadyResponse resp;
  ASSERT_TRUE(stub_->ModelReady(&c1, req, &resp).ok());
  EXPECT_TRUE(resp.ready());
  req.set_name("nope");
  auto st = stub_->ModelReady(&c2, req, &resp);
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(st.error_message().find("nope"), std::string::npos);
}

TEST_F(GrpcServerTest, ServerAndModelMetadataAndConfig) {
  ::grpc::ClientContext c1, c2, c3;
  inference::ServerMetadataResponse sm;
  ASSERT_TRUE(stub_->ServerMetadata(&c1, {}, &sm).ok());
  EXPECT_EQ(sm.name(), "sluice");
  EXPECT_FALSE(sm.version().empty());
  EXPECT_TRUE(std::count(sm.extensions().begin(), sm.extensions().end(), "model_repository"));

  inference::ModelMetadataRequest mreq;
  mreq.set_name("repeat");
  inference::ModelMetadataResponse mm;
  ASSERT_TRUE(stub_->ModelMetadata(&c2, mreq, &mm).ok());
  EXPECT_EQ(mm.name(), "repeat");
  ASSERT_EQ(mm.inputs_size(), 1);
  EXPECT_EQ(mm.inputs(0).name(), "IN");
  EXPECT_EQ(mm.inputs(0).datatype(), "INT32");
  ASSERT_EQ(mm.inputs(0).shape_size(), 1);
  EXPECT_EQ(mm.inputs(0).shape(0), -1);
  EXPECT_EQ(mm.versions_size(), 1);

  inference::ModelConfigRequest creq;
  creq.set_name("repeat");
  inference::ModelConfigResponse cfg;
  ASSERT_TRUE(stub_->ModelConfig(&c3, creq, &cfg).ok());
  EXPECT_EQ(cfg.config().name(), "repeat");
  EXPECT_TRUE(cfg.config().model_transaction_policy().decoupled());
}

TEST_F(GrpcServerTest, ModelInferRawContentsRoundTrip) {
  ::grpc::ClientContext ctx;
  auto req = InRequest("identity", "req-1", {1, -2, 300000});
  (*req.mutable_parameters())["temperature"].set_double_param(0.5);
  req.add_outputs()->set_name("IN");
  inference::ModelInferResponse resp;
  auto st = stub_->ModelInfer(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.model_name(), "identity");
  EXPECT_EQ(resp.model_version(), "1");
  EXPECT_EQ(resp.id(), "req-1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).datatype(), "INT32");
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(testing::Int32Values(resp.raw_output_contents(0)),
            (std::vector<int32_t>{1, -2, 300000}));
  InferRequest seen = fake_.last_request();
  EXPECT_EQ(std::get<double>(seen.parameters.at("temperature")), 0.5);
  EXPECT_EQ(seen.requested_outputs, std::vector<std::string>{"IN"});
}

TEST_F(GrpcServerTest, ModelInferTypedContents) {
  ::grpc::ClientContext ctx;
  inference::ModelInferRequest req;
  req.set_model_name("identity");
  auto* a = req.add_inputs();
  a->set_name("A");
  a->set_datatype("INT16");
  a->add_shape(2);
  a->mutable_contents()->add_int_contents(-7);
  a->mutable_contents()->add_int_contents(12345);
  auto* b = req.add_inputs();
  b->set_name("B");
  b->set_datatype("BYTES");
  b->add_shape(2);
  b->mutable_contents()->add_bytes_contents("hi");
  b->mutable_contents()->add_bytes_contents("");
  inference::ModelInferResponse resp;
  auto st = stub_->ModelInfer(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(resp.raw_output_contents_size(), 2);
  const std::string& a_raw = resp.raw_output_contents(0);
  ASSERT_EQ(a_raw.size(), 4u);
  int16_t v[2];
  std::memcpy(v, a_raw.data(), 4);
  EXPECT_EQ(v[0], -7);
  EXPECT_EQ(v[1], 12345);
  EXPECT_EQ(resp.raw_output_contents(1), std::string("\x02\0\0\0hi\0\0\0\0", 10));
}

TEST_F(GrpcServerTest, ModelInferErrors) {
  {
    ::grpc::ClientContext ctx;
    auto req = InRequest("identity", "", {1, 2});
    req.mutable_inputs(0)->set_shape(0, 3);  // 3 elements, 8 bytes
    inference::ModelInferResponse resp;
    auto st = stub_->ModelInfer(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("IN"), std::string::npos) << st.error_message();
  }
  {
    ::grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    auto st = stub_->ModelInfer(&ctx, InRequest("repeat", "", {1}), &resp);
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::UNIMPLEMENTED);
    EXPECT_EQ(st.error_message(),
              "ModelInfer RPC doesn't support models with decoupled transaction policy");
  }
  {
    ::grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    auto st = stub_->ModelInfer(&ctx, InRequest("missing", "", {1}), &resp);
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::NOT_FOUND);
  }
  {
    ::grpc::ClientContext ctx;
    inference::ModelInferResponse resp;
    auto st = stub_->ModelInfer(&ctx, InRequest("fail", "", {1}), &resp);
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INTERNAL);
    EXPECT_EQ(st.error_message(), "backend failed");
  }
}

TEST_F(GrpcServerTest, ModelInferClientCancelCancelsTheRequest) {
  ::grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  ::grpc::Status st;
  std::thread client(
      [&] { st = stub_->ModelInfer(&ctx, InRequest("hang_unary", "u-1", {1}), &resp); });
  ASSERT_TRUE(fake_.WaitForInfer("u-1", 5s));
  ctx.TryCancel();
  client.join();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(fake_.WaitForCancel("u-1", 2s));
}

using Stream =
    ::grpc::ClientReaderWriter<inference::ModelInferRequest, inference::ModelStreamInferResponse>;

// Reads until the server ends the stream.
std::vector<inference::ModelStreamInferResponse> ReadAll(Stream& stream) {
  std::vector<inference::ModelStreamInferResponse> out;
  inference::ModelStreamInferResponse msg;
  while (stream.Read(&msg)) out.push_back(msg);
  return out;
}

TEST_F(GrpcServerTest, StreamManyRequestsInOrderWithOneFinalEach) {
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  // Requests of different lengths, all in flight at once on one stream.
  std::map<std::string, std::vector<int32_t>> sent = {{"a", {10, 11, 12, 13, 14}},
                                                      {"b", {20}},
                                                      {"c", {30, 31, 32}},
                                                      {"d", {}},
                                                      {"e", {50, 51, 52, 53}}};
  for (const auto& [id, values] : sent) {
    auto req = InRequest("repeat", id, values);
    SetBool(req, "triton_enable_empty_final_response", true);
    ASSERT_TRUE(stream->Write(req));
  }
  auto req = InRequest("repeat_last_final", "f", {60, 61});
  SetBool(req, "triton_enable_empty_final_response", true);
  ASSERT_TRUE(stream->Write(req));
  sent["f"] = {60, 61};
  stream->WritesDone();
  auto responses = ReadAll(*stream);
  auto st = stream->Finish();
  ASSERT_TRUE(st.ok()) << st.error_message();

  std::map<std::string, std::vector<int32_t>> got;
  std::map<std::string, int> finals;
  std::set<std::string> finished;
  for (const auto& msg : responses) {
    ASSERT_TRUE(msg.error_message().empty()) << msg.error_message();
    const auto& r = msg.infer_response();
    EXPECT_FALSE(finished.count(r.id())) << "response after the final one for " << r.id();
    if (FinalFlag(r)) {
      ++finals[r.id()];
      finished.insert(r.id());
    }
    for (int i = 0; i < r.outputs_size(); ++i) {
      if (r.outputs(i).name() != "OUT") continue;
      auto v = testing::Int32Values(r.raw_output_contents(i));
      ASSERT_EQ(v.size(), 1u);
      got[r.id()].push_back(v[0]);
    }
  }
  for (const auto& [id, values] : sent) {
    EXPECT_EQ(got[id], values) << "request " << id;
    EXPECT_EQ(finals[id], 1) << "request " << id;
  }
  // repeat sends its final flag alone: an empty final response per request (5) plus one
  // per element (13); repeat_last_final's flag rides on its last response (2).
  EXPECT_EQ(responses.size(), 5u + 13u + 2u);
}

TEST_F(GrpcServerTest, StreamHundredsOfConcurrentRequests) {
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  constexpr int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    auto req = InRequest("repeat_last_final", "r" + std::to_string(i), {i, i + 1, i + 2});
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  std::map<std::string, std::vector<int32_t>> got;
  std::map<std::string, int> finals;
  for (const auto& msg : ReadAll(*stream)) {
    ASSERT_TRUE(msg.error_message().empty()) << msg.error_message();
    const auto& r = msg.infer_response();
    EXPECT_EQ(finals[r.id()], 0) << "response after the final one for " << r.id();
    finals[r.id()] += FinalFlag(r);
    ASSERT_EQ(r.outputs(0).name(), "OUT");
    got[r.id()].push_back(testing::Int32Values(r.raw_output_contents(0)).at(0));
  }
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(got.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) {
    const std::string id = "r" + std::to_string(i);
    EXPECT_EQ(got[id], (std::vector<int32_t>{i, i + 1, i + 2})) << id;
    EXPECT_EQ(finals[id], 1) << id;
  }
}

TEST_F(GrpcServerTest, StreamRefusesRequestsPastItsInflightLimit) {
  server_->Stop();
  GrpcServerOptions options;
  options.max_inflight_per_stream = 1;
  StartServer(options);
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("hang", "first", {1})));
  ASSERT_TRUE(fake_.WaitForInfer("first", 5s));
  ASSERT_TRUE(stream->Write(InRequest("identity", "second", {1})));
  inference::ModelStreamInferResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_EQ(msg.infer_response().id(), "second");
  EXPECT_NE(msg.error_message().find("in flight"), std::string::npos) << msg.error_message();
  ctx.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), ::grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(fake_.WaitForCancel("first", 2s));
}

TEST_F(GrpcServerTest, StreamEmptyFinalOnlyWhenAsked) {
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("repeat", "x", {1, 2, 3})));
  stream->WritesDone();
  auto responses = ReadAll(*stream);
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(responses.size(), 3u);
  for (const auto& msg : responses) EXPECT_FALSE(FinalFlag(msg.infer_response()));
}

TEST_F(GrpcServerTest, StreamErrorGoesInErrorMessageAndTheStreamStaysOpen) {
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("fail", "bad", {1})));
  inference::ModelStreamInferResponse msg;
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_EQ(msg.error_message(), "backend failed");
  EXPECT_EQ(msg.infer_response().id(), "bad");
  EXPECT_TRUE(FinalFlag(msg.infer_response()));
  // An unknown model and a malformed request are errors of their request only.
  ASSERT_TRUE(stream->Write(InRequest("missing", "unknown", {1})));
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_NE(msg.error_message().find("missing"), std::string::npos);
  auto malformed = InRequest("identity", "malformed", {1});
  malformed.mutable_inputs(0)->set_datatype("INT99");
  ASSERT_TRUE(stream->Write(malformed));
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_NE(msg.error_message().find("INT99"), std::string::npos);
  // The stream still serves.
  ASSERT_TRUE(stream->Write(InRequest("identity", "good", {7})));
  ASSERT_TRUE(stream->Read(&msg));
  EXPECT_TRUE(msg.error_message().empty());
  EXPECT_EQ(msg.infer_response().id(), "good");
  EXPECT_TRUE(FinalFlag(msg.infer_response()));
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&msg));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(GrpcServerTest, StreamTritonGrpcErrorHeaderEndsTheStreamWithAStatus) {
  ::grpc::ClientContext ctx;
  ctx.AddMetadata("triton_grpc_error", "true");
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("hang", "other", {1})));
  ASSERT_TRUE(fake_.WaitForInfer("other", 5s));
  ASSERT_TRUE(stream->Write(InRequest("fail", "bad", {1})));
  auto responses = ReadAll(*stream);
  EXPECT_TRUE(responses.empty());
  auto st = stream->Finish();
  EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INTERNAL);
  EXPECT_EQ(st.error_message(), "backend failed");
  // The stream's other request was cancelled.
  EXPECT_TRUE(fake_.WaitForCancel("other", 2s));
}

TEST_F(GrpcServerTest, StreamClientCancelCancelsEveryRequest) {
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("hang", "h1", {1})));
  ASSERT_TRUE(stream->Write(InRequest("hang", "h2", {1})));
  ASSERT_TRUE(fake_.WaitForInfer("h1", 5s));
  ASSERT_TRUE(fake_.WaitForInfer("h2", 5s));
  ctx.TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), ::grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(fake_.WaitForCancel("h1", 2s));
  EXPECT_TRUE(fake_.WaitForCancel("h2", 2s));
}

TEST_F(GrpcServerTest, StopCancelsOpenStreamsAfterTheGrace) {
  server_->Stop();
  GrpcServerOptions options;
  options.shutdown_grace = 100ms;
  StartServer(options);
  ::grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  ASSERT_TRUE(stream->Write(InRequest("hang", "s1", {1})));
  ASSERT_TRUE(fake_.WaitForInfer("s1", 5s));
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_TRUE(fake_.WaitForCancel("s1", 2s));
  EXPECT_FALSE(stream->Finish().ok());
}

TEST_F(GrpcServerTest, ModelStatistics) {
  core::ModelStatistics s;
  s.name = "identity";
  s.version = "1";
  s.last_inference_ms = 1700000000000;
  s.inference_count = 42;
  s.execution_count = 40;
  s.success = {42, 4200};
  s.fail = {3, 30};
  s.queue = {42, 420};
  s.compute_input = {40, 1};
  s.compute_infer = {40, 2};
  s.compute_output = {40, 3};
  fake_.stats = {s};
  ::grpc::ClientContext ctx;
  inference::ModelStatisticsRequest req;
  req.set_name("identity");
  inference::ModelStatisticsResponse resp;
  ASSERT_TRUE(stub_->ModelStatistics(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.model_stats_size(), 1);
  const auto& m = resp.model_stats(0);
  EXPECT_EQ(m.name(), "identity");
  EXPECT_EQ(m.version(), "1");
  EXPECT_EQ(m.last_inference(), 1700000000000u);
  EXPECT_EQ(m.inference_count(), 42u);
  EXPECT_EQ(m.execution_count(), 40u);
  EXPECT_EQ(m.inference_stats().success().ns(), 4200u);
  EXPECT_EQ(m.inference_stats().fail().count(), 3u);
  EXPECT_EQ(m.inference_stats().queue().ns(), 420u);
  EXPECT_EQ(m.inference_stats().compute_output().ns(), 3u);
  ::grpc::ClientContext ctx2;
  req.set_name("nope");
  EXPECT_EQ(stub_->ModelStatistics(&ctx2, req, &resp).error_code(), ::grpc::StatusCode::NOT_FOUND);
}

TEST_F(GrpcServerTest, RepositoryIndexLoadUnload) {
  fake_.index = {{"a", 1, core::ModelState::kReady, ""},
                 {"b", std::nullopt, core::ModelState::kUnavailable, "unloaded"}};
  {
    ::grpc::ClientContext ctx;
    inference::RepositoryIndexResponse resp;
    ASSERT_TRUE(stub_->RepositoryIndex(&ctx, {}, &resp).ok());
    ASSERT_EQ(resp.models_size(), 2);
    EXPECT_EQ(resp.models(0).name(), "a");
    EXPECT_EQ(resp.models(0).version(), "1");
    EXPECT_EQ(resp.models(0).state(), "READY");
    EXPECT_EQ(resp.models(1).version(), "");
    EXPECT_EQ(resp.models(1).state(), "UNAVAILABLE");
    EXPECT_EQ(resp.models(1).reason(), "unloaded");
  }
  {
    ::grpc::ClientContext ctx;
    inference::RepositoryIndexRequest req;
    req.set_ready(true);
    inference::RepositoryIndexResponse resp;
    ASSERT_TRUE(stub_->RepositoryIndex(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.models_size(), 1);
  }
  {
    ::grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name("m");
    (*req.mutable_parameters())["config"].set_string_param("{\"backend\":\"identity\"}");
    (*req.mutable_parameters())["file:1/model.json"].set_bytes_param(std::string("{\0}", 3));
    inference::RepositoryModelLoadResponse resp;
    ASSERT_TRUE(stub_->RepositoryModelLoad(&ctx, req, &resp).ok());
    auto loads = fake_.loads();
    ASSERT_EQ(loads.size(), 1u);
    EXPECT_EQ(loads[0].name, "m");
    EXPECT_EQ(loads[0].options.config_json, "{\"backend\":\"identity\"}");
    EXPECT_EQ(loads[0].options.files.at("1/model.json"), std::string("{\0}", 3));
  }
  {
    ::grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name("m");
    (*req.mutable_parameters())["config"].set_int64_param(3);
    inference::RepositoryModelLoadResponse resp;
    EXPECT_EQ(stub_->RepositoryModelLoad(&ctx, req, &resp).error_code(),
              ::grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    fake_.load_result = InvalidArgument("load failed for model 'm': bad config");
    ::grpc::ClientContext ctx;
    inference::RepositoryModelLoadRequest req;
    req.set_model_name("m");
    inference::RepositoryModelLoadResponse resp;
    auto st = stub_->RepositoryModelLoad(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(st.error_message(), "load failed for model 'm': bad config");
  }
  {
    ::grpc::ClientContext ctx;
    inference::RepositoryModelUnloadRequest req;
    req.set_model_name("m");
    (*req.mutable_parameters())["unload_dependents"].set_bool_param(true);
    inference::RepositoryModelUnloadResponse resp;
    ASSERT_TRUE(stub_->RepositoryModelUnload(&ctx, req, &resp).ok());
    auto unloads = fake_.unloads();
    ASSERT_EQ(unloads.size(), 1u);
    EXPECT_EQ(unloads[0].name, "m");
    EXPECT_TRUE(unloads[0].options.unload_dependents);
    EXPECT_TRUE(unloads[0].options.wait);
  }
}

TEST_F(GrpcServerTest, LogSettings) {
  const LogSettings before = GetLogSettings();
  {
    ::grpc::ClientContext ctx;
    inference::LogSettingsRequest req;
    (*req.mutable_settings())["log_verbose_level"].set_uint32_param(before.log_verbose_level + 2);
    (*req.mutable_settings())["log_format"].set_string_param("ISO8601");
    inference::LogSettingsResponse resp;
    ASSERT_TRUE(stub_->LogSettings(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.settings().at("log_verbose_level").uint32_param(), before.log_verbose_level + 2);
    EXPECT_EQ(resp.settings().at("log_format").string_param(), "ISO8601");
    EXPECT_EQ(GetLogSettings().log_verbose_level, before.log_verbose_level + 2);
  }
  {
    ::grpc::ClientContext ctx;
    inference::LogSettingsRequest req;
    (*req.mutable_settings())["log_file"].set_string_param("/tmp/x.log");
    inference::LogSettingsResponse resp;
    EXPECT_EQ(stub_->LogSettings(&ctx, req, &resp).error_code(), ::grpc::StatusCode::UNIMPLEMENTED);
  }
  {
    // An invalid setting refuses the whole request.
    ::grpc::ClientContext ctx;
    inference::LogSettingsRequest req;
    (*req.mutable_settings())["log_info"].set_bool_param(!before.log_info);
    (*req.mutable_settings())["log_error"].set_string_param("yes");
    inference::LogSettingsResponse resp;
    EXPECT_EQ(stub_->LogSettings(&ctx, req, &resp).error_code(),
              ::grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(GetLogSettings().log_info, before.log_info);
  }
  SetLogSettings(before);
}

TEST_F(GrpcServerTest, SharedMemoryAndTraceAreUnimplemented) {
  auto expect_unimplemented = [](const ::grpc::Status& st) {
    EXPECT_EQ(st.error_code(), ::grpc::StatusCode::UNIMPLEMENTED) << st.error_message();
  };
  {
    ::grpc::ClientContext ctx;
    inference::SystemSharedMemoryStatusResponse r;
    expect_unimplemented(stub_->SystemSharedMemoryStatus(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::SystemSharedMemoryRegisterResponse r;
    expect_unimplemented(stub_->SystemSharedMemoryRegister(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::SystemSharedMemoryUnregisterResponse r;
    expect_unimplemented(stub_->SystemSharedMemoryUnregister(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::CudaSharedMemoryStatusResponse r;
    expect_unimplemented(stub_->CudaSharedMemoryStatus(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::CudaSharedMemoryRegisterResponse r;
    expect_unimplemented(stub_->CudaSharedMemoryRegister(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::CudaSharedMemoryUnregisterResponse r;
    expect_unimplemented(stub_->CudaSharedMemoryUnregister(&ctx, {}, &r));
  }
  {
    ::grpc::ClientContext ctx;
    inference::TraceSettingResponse r;
    expect_unimplemented(stub_->TraceSetting(&ctx, {}, &r));
  }
}

TEST_F(GrpcServerTest, HealthServiceReportsServing) {
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; the reply
  // HealthCheckResponse{status: SERVING (1)} is the two bytes 08 01.
  ::grpc::GenericStub generic(channel_);
  ::grpc::ClientContext ctx;
  ::grpc::Slice empty(std::string{});
  ::grpc::ByteBuffer request(&empty, 1), response;
  std::promise<::grpc::Status> done;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", ::grpc::StubOptions(), &request,
                    &response, [&done](::grpc::Status st) { done.set_value(st); });
  auto st = done.get_future().get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  std::vector<::grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices)
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST(GrpcServerCreate, RefusesBadAddressAndBusyPort) {
  FakeInferenceService fake;
  EXPECT_FALSE(GrpcServer::Create("no-port", fake).ok());
  auto a = GrpcServer::Create("127.0.0.1:0", fake);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->Start().ok());
  auto b = GrpcServer::Create("127.0.0.1:" + std::to_string((*a)->port()), fake);
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE((*b)->Start().ok());
}

}  // namespace
}  // namespace sluice::grpc_frontend

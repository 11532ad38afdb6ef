// KServe v2 + Triton extension routes against FakeInferenceService through a real loopback
// socket: every route, bad input (each a 4xx JSON error, and the server answers the next
// request), the binary tensor extension, generate / generate_stream (SSE), and cancel on
// client disconnect.

#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/log_settings.h"
#include "frontend/http/base64.h"
#include "frontend/http/http_server.h"
#include "frontend/http/kserve_routes.h"
#include "support/fake_inference_service.h"
#include "support/http_test_client.h"

namespace sluice::http {
namespace {

using nlohmann::json;
using testing::FakeInferenceService;
using testing::FakeModel;
using testing::HttpResult;
using testing::TestHttpClient;

core::TensorMetadata Meta(const std::string& name, DataType dt, Shape shape) { return {name, dt, shape}; }

class KServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FakeModel identity;
    identity.name = "identity";
    identity.versions = {1, 2};
    identity.inputs = {Meta("INPUT0", DataType::kFp32, {-1})};
    identity.outputs = {Meta("OUTPUT0", DataType::kFp32, {-1})};
    service_.AddModel(identity);

    FakeModel echo;  // outputs named like the inputs
    echo.name = "echo";
    service_.AddModel(echo);

    FakeModel slow = echo;
    slow.name = "slow";
    slow.delay = std::chrono::milliseconds(5000);
    service_.AddModel(slow);

    FakeModel llm;
    llm.name = "llm";
    llm.decoupled = true;
    llm.responses = 3;
    llm.delay = std::chrono::milliseconds(5);
    llm.inputs = {Meta("text_input", DataType::kBytes, {1}), Meta("stream", DataType::kBool, {1}),
                  Meta("max_tokens", DataType::kInt32, {1})};
    llm.outputs = {Meta("text_output", DataType::kBytes, {-1})};
    service_.AddModel(llm);

    FakeModel single = llm;
    single.name = "single";
    single.responses = 1;
    service_.AddModel(single);

    FakeModel failing = llm;
    failing.name = "failing";
    failing.stream_error = Internal("stub crashed");
    failing.fail_after = 1;
    service_.AddModel(failing);

    FakeModel endless = llm;
    endless.name = "endless";
    endless.responses = 1000;
    endless.delay = std::chrono::milliseconds(20);
    service_.AddModel(endless);

    FakeModel down = echo;
    down.name = "down";
    down.ready = false;
    service_.AddModel(down);

    Router router;
    RequestLimits limits;
    limits.max_tensor_elements = 1 << 20;
    RegisterKServeRoutes(router, service_, limits);
    HttpServerOptions options;
    options.max_body_bytes = 1 << 20;
    auto server = HttpServer::Create(options, std::move(router));
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
    client_ = std::make_unique<TestHttpClient>(server_->port());
  }
  void TearDown() override {
    client_.reset();
    server_->Stop();
  }

  HttpResult Get(const std::string& target) { return client_->Request("GET", target); }
  HttpResult Post(const std::string& target, const std::string& body,
                  const std::map<std::string, std::string>& headers = {}) {
    return client_->Request("POST", target, body, headers);
  }
  // A 4xx with a JSON error containing `needle`, and the server still answers.
  void ExpectError(const HttpResult& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    auto j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << r.body;
    TestHttpClient fresh(server_->port());
    EXPECT_EQ(fresh.Request("GET", "/v2/health/live").status, 200);
  }

  FakeInferenceService service_;  // outlives the server
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<TestHttpClient> client_;
};

TEST_F(KServeTest, HealthAndServerMetadata) {
  EXPECT_EQ(Get("/v2/health/live").status, 200);
  EXPECT_EQ(Get("/v2/health/ready").status, 200);
  service_.SetReady(false);
  HttpResult r = Get("/v2/health/ready");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "");
  service_.SetLive(false);
  EXPECT_EQ(Get("/v2/health/live").status, 400);
  service_.SetLive(true);
  r = Get("/v2");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["name"], "sluice");
  EXPECT_TRUE(j["version"].is_string());
  EXPECT_NE(std::find(j["extensions"].begin(), j["extensions"].end(), "generate"), j["extensions"].end());
  ExpectError(Post("/v2/health/live", ""), 405, "not allowed");
  ExpectError(Get("/v2/nothing"), 404, "not found");
}

TEST_F(KServeTest, ModelMetadataReadyConfig) {
  HttpResult r = Get("/v2/models/identity");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  EXPECT_EQ(j["name"], "identity");
  EXPECT_EQ(j["versions"], json::parse(R"(["1","2"])"));
  EXPECT_EQ(j["platform"], "fake");
  EXPECT_EQ(j["inputs"][0], json::parse(R"({"name":"INPUT0","datatype":"FP32","shape":[-1]})"));
  EXPECT_EQ(j["outputs"][0]["name"], "OUTPUT0");
  EXPECT_EQ(Get("/v2/models/identity/versions/2").status, 200);
  ExpectError(Get("/v2/models/identity/versions/7"), 404, "version");
  ExpectError(Get("/v2/models/nope"), 404, "nope");
  EXPECT_EQ(Get("/v2/models/identity/ready").status, 200);
  EXPECT_EQ(Get("/v2/models/identity/versions/1/ready").status, 200);
  EXPECT_EQ(Get("/v2/models/down/ready").status, 400);
  EXPECT_EQ(Get("/v2/models/nope/ready").status, 400);
  r = Get("/v2/models/identity/config");
  ASSERT_EQ(r.status, 200);
  j = json::parse(r.body);
  EXPECT_EQ(j["name"], "identity");
  EXPECT_EQ(j["platform"], "fake");
}

TEST_F(KServeTest, InferJsonRoundTripsEveryKindOfData) {
  json req = json::parse(R"({"id":"42","inputs":[
    {"name":"F","datatype":"FP32","shape":[2,2],"data":[[1.5,2],[3,4]]},
    {"name":"H","datatype":"FP16","shape":[2],"data":[0.5,-1]},
    {"name":"B","datatype":"BF16","shape":[1],"data":[2.5]},
    {"name":"S","datatype":"BYTES","shape":[2],"data":["hello","w\u00f6rld"]},
    {"name":"Q","datatype":"BOOL","shape":[2],"data":[true,false]},
    {"name":"U","datatype":"UINT64","shape":[1],"data":[18446744073709551615]},
    {"name":"I","datatype":"INT8","shape":[1],"data":[-128]}]})");
  HttpResult r = Post("/v2/models/echo/infer", req.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  auto j = json::parse(r.body);
  EXPECT_EQ(j["id"], "42");
  EXPECT_EQ(j["model_name"], "echo");
  EXPECT_EQ(j["model_version"], "1");
  auto& o = j["outputs"];
  ASSERT_EQ(o.size(), 7u);
  EXPECT_EQ(o[0]["shape"], json::parse("[2,2]"));
  EXPECT_EQ(o[0]["data"], json::parse("[1.5,2.0,3.0,4.0]"));
  EXPECT_EQ(o[1]["data"], json::parse("[0.5,-1.0]"));
  EXPECT_EQ(o[2]["data"], json::parse("[2.5]"));
  EXPECT_EQ(o[3]["data"], json::parse(R"(["hello","w\u00f6rld"])"));
  EXPECT_EQ(o[4]["data"], json::parse("[true,false]"));
  EXPECT_EQ(o[5]["data"], json::parse("[18446744073709551615]"));
  EXPECT_EQ(o[6]["data"], json::parse("[-128]"));
  ASSERT_EQ(service_.requests().size(), 1u);
  EXPECT_EQ(service_.requests()[0].model_version, -1);

  r = Post("/v2/models/identity/versions/1/infer",
           R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1],"data":[7]}],"outputs":[{"name":"OUTPUT0"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  j = json::parse(r.body);
  EXPECT_EQ(j["outputs"][0]["name"], "OUTPUT0");
  EXPECT_EQ(service_.requests()[1].model_version, 1);
  EXPECT_EQ(service_.requests()[1].requested_outputs, std::vector<std::string>{"OUTPUT0"});
}

TEST_F(KServeTest, InferBinaryTensorExtension) {
  std::string bytes;
  AppendBytesElement(bytes, "ab");
  AppendBytesElement(bytes, "xyz");
  float f[3] = {1, 2, 3};
  std::string floats(reinterpret_cast<const char*>(f), 12);
  json header = {{"inputs",
                  {{{"name", "F"}, {"datatype", "FP32"}, {"shape", {3}}, {"parameters", {{"binary_data_size", 12}}}},
                   {{"name", "S"}, {"datatype", "BYTES"}, {"shape", {2}}, {"parameters", {{"binary_data_size", bytes.size()}}}}}},
                 {"outputs", {{{"name", "F"}, {"parameters", {{"binary_data", true}}}}, {{"name", "S"}}}}};
  const std::string h = header.dump();
  HttpResult r = Post("/v2/models/echo/infer", h + floats + bytes,
                      {{"Inference-Header-Content-Length", std::to_string(h.size())}});
  ASSERT_EQ(r.status, 200) << r.body;
  const size_t json_len = std::stoul(r.Header("inference-header-content-length"));
  auto j = json::parse(r.body.substr(0, json_len));
  EXPECT_EQ(j["outputs"][0]["parameters"]["binary_data_size"], 12);
  EXPECT_FALSE(j["outputs"][0].contains("data"));
  EXPECT_EQ(j["outputs"][1]["data"], json::parse(R"(["ab","xyz"])"));
  EXPECT_EQ(r.body.substr(json_len), floats);

  // Request-level binary_data_output.
  r = Post("/v2/models/echo/infer",
           R"({"parameters":{"binary_data_output":true},"inputs":[{"name":"I","datatype":"INT32","shape":[1],"data":[5]}]})");
  ASSERT_EQ(r.status, 200);
  ASSERT_FALSE(r.Header("inference-header-content-length").empty());
  const size_t n = std::stoul(r.Header("inference-header-content-length"));
  EXPECT_EQ(r.body.size(), n + 4);
  int32_t v = 0;
  std::memcpy(&v, r.body.data() + n, 4);
  EXPECT_EQ(v, 5);

  // A lying header length, sizes that do not add up, a BYTES prefix past the buffer.
  ExpectError(Post("/v2/models/echo/infer", h + floats + bytes, {{"Inference-Header-Content-Length", "100000"}}), 400,
              "Inference-Header-Content-Length");
  ExpectError(Post("/v2/models/echo/infer", h + floats + bytes + "zz",
                   {{"Inference-Header-Content-Length", std::to_string(h.size())}}),
              400, "binary");
  ExpectError(Post("/v2/models/echo/infer", h + floats + bytes.substr(0, 5),
                   {{"Inference-Header-Content-Length", std::to_string(h.size())}}),
              400, "past the end");
  std::string lying_bytes = bytes;
  lying_bytes[0] = '\x7f';  // first element claims 127 bytes
  ExpectError(Post("/v2/models/echo/infer", h + floats + lying_bytes,
                   {{"Inference-Header-Content-Length", std::to_string(h.size())}}),
              400, "past the end of the buffer");
  ExpectError(Post("/v2/models/echo/infer", h + floats + bytes, {{"Inference-Header-Content-Length", "12x"}}), 400,
              "Inference-Header-Content-Length");
}

TEST_F(KServeTest, InferBadInputIs4xxAndServerKeepsServing) {
  const std::string url = "/v2/models/echo/infer";
  ExpectError(Post(url, "{\"inputs\": [}"), 400, "malformed JSON");
  ExpectError(Post(url, std::string(100000, '[') + std::string(100000, ']')), 400, "nesting depth");
  ExpectError(Post(url, std::string(100000, '{')), 400, "nesting depth");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[2],"data":["a","b"]}]})"), 400,
              "not valid INT32");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"FP99","shape":[1],"data":[1]}]})"), 400,
              "unknown datatype");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[3],"data":[1,2]}]})"), 400,
              "needs 3 elements");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[2],"data":[1,2,3]}]})"), 400, "'x'");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[-2],"data":[]}]})"), 400, "negative");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[9223372036854775807,4],"data":[1]}]})"),
              400, "elements");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],"data":[1]}]})"),
              400, "rank");
  ExpectError(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1]}]})"), 400, "no 'data'");
  ExpectError(Post(url, R"([1,2])"), 400, "JSON object");
  ExpectError(Post("/v2/models/nope/infer", R"({"inputs":[]})"), 404, "nope");
  ExpectError(Post("/v2/models/identity/versions/9/infer", R"({"inputs":[]})"), 404, "version");
  ExpectError(Post("/v2/models/identity/versions/abc/infer", R"({"inputs":[]})"), 400, "model version");
  ExpectError(Get(url), 405, "not allowed");
  ExpectError(Post("/v2/models/down/infer", R"({"inputs":[]})"), 503, "not ready");
  service_.FailNextInfer(Internal("something broke"));
  ExpectError(Post(url, R"({"inputs":[]})"), 500, "something broke");
  EXPECT_TRUE(service_.requests().empty());
  // The same keep-alive connection still works after all of that.
  EXPECT_EQ(Post(url, R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1]}]})").status, 200);
}

TEST_F(KServeTest, InferOnDecoupledModelIsTritonsError) {
  HttpResult r = Post("/v2/models/llm/infer", R"({"inputs":[]})");
  ExpectError(r, 501, kDecoupledInferError);
}

TEST_F(KServeTest, InferClientDisconnectCancels) {
  TestHttpClient c(server_->port());
  const std::string body = R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1]}]})";
  c.WriteRaw("POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\n\r\n" + body);
  for (int i = 0; i < 200 && service_.requests().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(service_.requests().size(), 1u);
  const auto closed = std::chrono::steady_clock::now();
  c.Close();
  ASSERT_TRUE(service_.WaitForFinished(1, std::chrono::seconds(2)));
  ASSERT_EQ(service_.cancel_count(), 1);
  EXPECT_LT(*service_.last_cancel_time() - closed, std::chrono::milliseconds(100));
}

TEST_F(KServeTest, StatsHaveTritonsShape) {
  ASSERT_EQ(Post("/v2/models/echo/infer", R"({"inputs":[]})").status, 200);
  HttpResult r = Get("/v2/models/echo/stats");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  ASSERT_EQ(j["model_stats"].size(), 1u);
  auto& s = j["model_stats"][0];
  EXPECT_EQ(s["name"], "echo");
  EXPECT_EQ(s["version"], "1");
  EXPECT_EQ(s["inference_count"], 1);
  for (const char* k : {"success", "fail", "queue", "compute_input", "compute_infer", "compute_output"}) {
    EXPECT_TRUE(s["inference_stats"][k].contains("count")) << k;
    EXPECT_TRUE(s["inference_stats"][k].contains("ns")) << k;
  }
  EXPECT_EQ(s["inference_stats"]["success"]["count"], 1);
  EXPECT_TRUE(s["batch_stats"].is_array());
  r = Get("/v2/models/stats");
  ASSERT_EQ(r.status, 200);
  EXPECT_GE(json::parse(r.body)["model_stats"].size(), 8u);
  EXPECT_EQ(json::parse(Get("/v2/models/identity/versions/2/stats").body)["model_stats"].size(), 1u);
  ExpectError(Get("/v2/models/nope/stats"), 404, "nope");
}

TEST_F(KServeTest, RepositoryIndexLoadUnload) {
  service_.SetIndex({{"a", 1, core::ModelState::kReady, ""}, {"b", std::nullopt, core::ModelState::kUnavailable, "unloaded"}});
  HttpResult r = Post("/v2/repository/index", "");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body), json::parse(R"([{"name":"a","version":"1","state":"READY"},
                                                {"name":"b","state":"UNAVAILABLE","reason":"unloaded"}])"));
  EXPECT_EQ(service_.last_index_ready_only(), false);
  ASSERT_EQ(Post("/v2/repository/index", R"({"ready":true})").status, 200);
  EXPECT_EQ(service_.last_index_ready_only(), true);
  ExpectError(Post("/v2/repository/index", R"({"ready":"yes"})"), 400, "ready");
  ExpectError(Get("/v2/repository/index"), 405, "not allowed");

  const std::string config = R"({"name":"m","backend":"identity"})";
  json load = {{"parameters", {{"config", config}, {"file:1/model.bin", Base64Encode(std::string("\0\1\2", 3))}}}};
  r = Post("/v2/repository/models/m/load", load.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(service_.loads().size(), 1u);
  EXPECT_EQ(service_.loads()[0].first, "m");
  EXPECT_EQ(service_.loads()[0].second.config_json, config);
  EXPECT_EQ(service_.loads()[0].second.files.at("1/model.bin"), std::string("\0\1\2", 3));
  EXPECT_EQ(Post("/v2/repository/models/m/load", "").status, 200);
  EXPECT_FALSE(service_.loads()[1].second.config_json.has_value());
  ExpectError(Post("/v2/repository/models/m/load", R"({"parameters":{"file:1/x":"!!notbase64"}})"), 400, "base64");
  ExpectError(Post("/v2/repository/models/m/load", R"({"parameters":{"config":{"name":"m"}}})"), 400, "config");
  ExpectError(Post("/v2/repository/models/m/load", "{nope"), 400, "malformed JSON");
  EXPECT_EQ(service_.loads().size(), 2u);
  service_.SetLoadStatus(InvalidArgument("load failed for model 'm': bad config"));
  ExpectError(Post("/v2/repository/models/m/load", ""), 400, "load failed for model 'm'");

  EXPECT_EQ(Post("/v2/repository/models/m/unload", "").status, 200);
  EXPECT_EQ(Post("/v2/repository/models/m/unload", R"({"parameters":{"unload_dependents":true,"wait":false}})").status,
            200);
  ASSERT_EQ(service_.unloads().size(), 2u);
  EXPECT_TRUE(service_.unloads()[0].second.wait);
  EXPECT_FALSE(service_.unloads()[0].second.unload_dependents);
  EXPECT_FALSE(service_.unloads()[1].second.wait);
  EXPECT_TRUE(service_.unloads()[1].second.unload_dependents);
  ExpectError(Post("/v2/repository/models/m/unload", R"({"parameters":{"wait":1}})"), 400, "wait");
}

TEST_F(KServeTest, LoggingGetAndPost) {
  HttpResult r = Get("/v2/logging");
  ASSERT_EQ(r.status, 200);
  auto j = json::parse(r.body);
  for (const char* k : {"log_file", "log_info", "log_warning", "log_error", "log_verbose_level", "log_format"})
    EXPECT_TRUE(j.contains(k)) << k;
  const LogSettings before = GetLogSettings();
  r = Post("/v2/logging", R"({"log_verbose_level":2,"log_format":"ISO8601"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["log_verbose_level"], 2);
  EXPECT_EQ(GetLogSettings().log_verbose_level, 2u);
  ExpectError(Post("/v2/logging", R"({"log_file":"/tmp/x"})"), 501, "log_file");
  ExpectError(Post("/v2/logging", R"({"log_format":"xml"})"), 400, "log_format");
  ExpectError(Post("/v2/logging", R"({"log_info":"yes"})"), 400, "log_info");
  SetLogSettings(before);
}

TEST_F(KServeTest, GenerateFillsInputsAndParameters) {
  HttpResult r = Post("/v2/models/single/generate",
                      R"({"text_input":"hi","stream":false,"max_tokens":7,"temperature":0.5,"parameters":{"seed":3}})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["model_name"], "single");
  EXPECT_EQ(j["text_output"], "hi");  // one element: a scalar
  EXPECT_EQ(j["IDX"], 0);
  const std::vector<InferRequest> requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const InferRequest& req = requests[0];
  ASSERT_EQ(req.inputs.size(), 3u);
  for (const Tensor& t : req.inputs) {
    if (t.name == "max_tokens") {
      EXPECT_EQ(t.datatype, DataType::kInt32);
      int32_t v = 0;
      std::memcpy(&v, t.data.data(), 4);
      EXPECT_EQ(v, 7);
    }
    if (t.name == "stream") {
      EXPECT_EQ(t.datatype, DataType::kBool);
    }
    EXPECT_EQ(t.shape, Shape{1});
  }
  EXPECT_DOUBLE_EQ(std::get<double>(req.parameters.at("temperature")), 0.5);
  EXPECT_EQ(std::get<int64_t>(req.parameters.at("seed")), 3);

  ExpectError(Post("/v2/models/llm/generate", R"({"text_input":"hi"})"), 400,
              "generate expects model to produce exactly 1 response");
  ExpectError(Post("/v2/models/single/generate", R"({"text_input":"hi","max_tokens":"many"})"), 400, "max_tokens");
  ExpectError(Post("/v2/models/single/generate", R"({"text_input":"hi","other":{"a":1}})"), 400, "other");
  ExpectError(Post("/v2/models/nope/generate", R"({"text_input":"hi"})"), 404, "nope");
  ExpectError(Post("/v2/models/single/generate", std::string(100000, '[')), 400, "nesting depth");
}

TEST_F(KServeTest, GenerateStreamSendsEventsInOrder) {
  HttpResult r = Post("/v2/models/llm/generate_stream", R"({"text_input":"tok"})");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.Header("transfer-encoding"), "chunked");
  std::vector<json> events;
  size_t pos = 0;
  while (pos < r.body.size()) {
    ASSERT_EQ(r.body.compare(pos, 6, "data: "), 0) << r.body;
    const size_t end = r.body.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos);
    events.push_back(json::parse(r.body.substr(pos + 6, end - pos - 6)));
    pos = end + 2;
  }
  ASSERT_EQ(events.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(events[i]["IDX"], i);
    EXPECT_EQ(events[i]["text_output"], "tok");
  }
  // Keep-alive after a stream.
  EXPECT_EQ(Get("/v2/health/live").status, 200);
}

TEST_F(KServeTest, GenerateStreamErrors) {
  // A later error comes in-band.
  HttpResult r = Post("/v2/models/failing/generate_stream", R"({"text_input":"x"})");
  ASSERT_EQ(r.status, 200);
  const size_t first = r.body.find("\n\n");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(json::parse(r.body.substr(6, first - 6))["IDX"], 0);
  EXPECT_EQ(r.body.substr(first + 2), "data: {\"error\":\"stub crashed\"}\n\n");
  // An error before the first response sets the status.
  FakeModel first_fails;
  first_fails.name = "first_fails";
  first_fails.decoupled = true;
  first_fails.stream_error = Unavailable("model is unloading");
  service_.AddModel(first_fails);
  ExpectError(Post("/v2/models/first_fails/generate_stream", "{}"), 503, "unloading");
  ExpectError(Post("/v2/models/llm/generate_stream", R"({"text_input": 1e999})"), 400,
              "number 1e999 at '/text_input' is beyond the range of a double");
}

TEST_F(KServeTest, GenerateStreamClientDisconnectCancelsWithin100ms) {
  TestHttpClient c(server_->port());
  const std::string body = R"({"text_input":"x"})";
  c.WriteRaw("POST /v2/models/endless/generate_stream HTTP/1.1\r\nHost: x\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body);
  const std::string got = c.ReadUntil("\"IDX\":1");
  ASSERT_NE(got.find("\"IDX\":1"), std::string::npos) << got;
  EXPECT_NE(got.find("text/event-stream"), std::string::npos);
  const auto closed = std::chrono::steady_clock::now();
  c.Close();
  ASSERT_TRUE(service_.WaitForFinished(1, std::chrono::seconds(2)));
  ASSERT_EQ(service_.cancel_count(), 1);
  EXPECT_LT(*service_.last_cancel_time() - closed, std::chrono::milliseconds(100));
}

}  // namespace
}  // namespace sluice::http

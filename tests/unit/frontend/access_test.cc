// Access control without sockets: AccessPolicy (API key, Triton's restricted categories,
// constant-time comparison), the HTTP guard dispatched through the real Router over every
// route the server registers x {no key, wrong key, right key}, restricted categories, the
// browser rules (Origin, CORS simple Content-Types, preflight), and the gRPC RPC table
// checked against the service descriptor so that a new route or RPC cannot escape.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

#include "common/access_policy.h"
#include "frontend/grpc/grpc_access.h"
#include "frontend/http/access_guard.h"
#include "frontend/http/kserve_routes.h"
#include "frontend/http/router.h"
#include "frontend/openai/openai_routes.h"
#include "support/fake_inference_service.h"

namespace sluice {
namespace {

using http::HeaderList;
using http::HttpRequest;
using http::Router;

constexpr char kKey[] = "s3cret-key";

// Records the reply; Post / PostBlocking run inline.
class RecordingWriter final : public http::ResponseWriter {
 public:
  bool Send(int status, std::string, std::string body, HeaderList headers) override {
    Record(status, std::move(body), std::move(headers));
    return true;
  }
  bool StartStream(int status, std::string, HeaderList headers) override {
    Record(status, "", std::move(headers));
    return true;
  }
  bool WriteChunk(std::string) override { return true; }
  void EndStream() override {}
  void OnDisconnect(std::function<void()>) override {}
  bool Disconnected() const override { return false; }
  void Post(std::function<void()> fn) override { fn(); }
  void PostBlocking(std::function<void()> fn) override { fn(); }

  // The status of the reply, waiting for it up to 10 s (handlers may answer from a thread).
  int WaitStatus() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return status_ != 0; });
    return status_;
  }
  std::string Header(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, v] : headers_)
      if (k == name) return v;
    return "";
  }
  std::string body() {
    std::lock_guard<std::mutex> lock(mu_);
    return body_;
  }

 private:
  void Record(int status, std::string body, HeaderList headers) {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_ != 0) return;
    status_ = status;
    body_ = std::move(body);
    headers_ = std::move(headers);
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 0;
  std::string body_;
  HeaderList headers_;
};

std::string Instantiate(std::string pattern) {
  for (const auto& [from, to] : {std::pair<std::string, std::string>{"{model}", "nosuch"},
                                 {"{version}", "1"},
                                 {"{region}", "r"},
                                 {"{org}", "org"}}) {
    for (size_t at = pattern.find(from); at != std::string::npos; at = pattern.find(from))
      pattern.replace(at, from.size(), to);
  }
  return pattern;
}

HttpRequest MakeRequest(const std::string& method, const std::string& path,
                        std::map<std::string, std::string, std::less<>> headers = {}) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.target = path;
  r.headers = std::move(headers);
  if (method == "POST") {
    r.body = "{}";
    if (!r.headers.count("content-type")) r.headers["content-type"] = "application/json";
  }
  return r;
}

// ---------------------------------------------------------------- AccessPolicy

TEST(AccessPolicyTest, ParsesTritonRestrictionSyntax) {
  auto r = ParseApiRestriction("model-repository,logging:Admin-Key=admin-value");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->categories,
            (std::vector<ApiCategory>{ApiCategory::kModelRepository, ApiCategory::kLogging}));
  EXPECT_EQ(r->key, "admin-key");  // headers are matched case-insensitively
  EXPECT_EQ(r->value, "admin-value");
  for (const char* name : {"model-repository", "model-config", "shared-memory", "statistics",
                           "trace", "logging", "health", "metadata", "inference"}) {
    auto one = ParseApiRestriction(std::string(name) + ":k=v");
    ASSERT_TRUE(one.ok()) << name;
    EXPECT_EQ(ApiCategoryName(one->categories.at(0)), name);
  }
  for (const char* bad :
       {"model-repository", "model-repository:k", "nonsense:k=v", "logging:=v", ":k=v"}) {
    auto parsed = ParseApiRestriction(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
  }
  EXPECT_NE(ParseApiRestriction("nonsense:k=v").status().message().find("'nonsense'"),
            std::string::npos);
}

TEST(AccessPolicyTest, CategoryInTwoGroupsIsRefused) {
  AccessPolicyOptions options;
  options.restrictions = {*ParseApiRestriction("logging:a=1"),
                          *ParseApiRestriction("trace,logging:b=2")};
  auto policy = AccessPolicy::Create(options);
  ASSERT_FALSE(policy.ok());
  EXPECT_NE(policy.status().message().find("logging"), std::string::npos);
}

TEST(AccessPolicyTest, ConstantTimeEqualsAndBearer) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcabc"));  // cycling the secret must not match
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_EQ(BearerToken("Bearer xyz").value_or(""), "xyz");
  EXPECT_EQ(BearerToken("bearer   xyz ").value_or(""), "xyz");
  EXPECT_FALSE(BearerToken("Basic eHl6").has_value());
  EXPECT_FALSE(BearerToken("Bearer ").has_value());
  EXPECT_FALSE(BearerToken("Bearerxyz").has_value());
}

TEST(AccessPolicyTest, KeyThenRestrictionNeverLeakingTheKey) {
  AccessPolicyOptions options;
  options.api_key = kKey;
  options.restrictions = {*ParseApiRestriction("model-repository:admin=yes")};
  auto policy = AccessPolicy::Create(options);
  ASSERT_TRUE(policy.ok());
  auto with = [](std::map<std::string, std::string> h) {
    return [h](std::string_view name) -> std::optional<std::string_view> {
      auto it = h.find(std::string(name));
      if (it == h.end()) return std::nullopt;
      return std::string_view(it->second);
    };
  };
  using Kind = AccessDecision::Kind;
  EXPECT_EQ((*policy)->Authorize(ApiCategory::kInference, with({})).kind, Kind::kUnauthenticated);
  EXPECT_EQ(
      (*policy)->Authorize(ApiCategory::kInference, with({{"authorization", "Bearer nope"}})).kind,
      Kind::kUnauthenticated);
  EXPECT_EQ((*policy)
                ->Authorize(ApiCategory::kInference,
                            with({{"authorization", std::string("Bearer ") + kKey}}))
                .kind,
            Kind::kAllow);
  EXPECT_EQ((*policy)->Authorize(ApiCategory::kHealth, with({})).kind,
            Kind::kAllow);  // exempt by default
  const AccessDecision forbidden = (*policy)->Authorize(
      ApiCategory::kModelRepository, with({{"authorization", std::string("Bearer ") + kKey}}));
  EXPECT_EQ(forbidden.kind, Kind::kForbidden);
  EXPECT_EQ(forbidden.message, "This API is restricted, expecting header 'admin'");
  EXPECT_EQ(
      (*policy)
          ->Authorize(ApiCategory::kModelRepository,
                      with({{"authorization", std::string("Bearer ") + kKey}, {"admin", "yes"}}))
          .kind,
      Kind::kAllow);
  const AccessDecision unauth =
      (*policy)->Authorize(ApiCategory::kLogging, with({{"authorization", "Bearer x"}}));
  EXPECT_EQ(unauth.message.find(kKey), std::string::npos);

  options.api_key_exempt_health = false;
  auto strict = AccessPolicy::Create(options);
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ((*strict)->Authorize(ApiCategory::kHealth, with({})).kind, Kind::kUnauthenticated);
}

// ---------------------------------------------------------------- HTTP, every route

class HttpAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    http::RegisterKServeRoutes(router_, service_, limits_);
    openai::RegisterOpenAIRoutes(router_, service_, limits_);
  }
  void Guard(http::HttpAccessOptions options) {
    auto guard = http::HttpAccessGuard::Create(std::move(options));
    ASSERT_TRUE(guard.ok()) << guard.status().message();
    router_.SetAccessGuard(*guard);
  }
  std::shared_ptr<RecordingWriter> Dispatch(HttpRequest request) {
    auto writer = std::make_shared<RecordingWriter>();
    router_.Dispatch(request, writer);
    return writer;
  }

  testing::FakeInferenceService service_;
  http::RequestLimits limits_;
  Router router_;
};

TEST_F(HttpAccessTest, EveryRegisteredRouteHasACategory) {
  const auto routes = router_.Routes();
  ASSERT_GT(routes.size(), 30u);
  std::set<std::string> openai;
  for (const Router::RouteInfo& route : routes) {
    EXPECT_TRUE(route.category.has_value()) << route.method << " " << route.pattern
                                            << ": add it to HttpRouteCategory (access_guard.cc)";
    if (route.pattern.rfind("/v1/", 0) == 0) openai.insert(route.pattern);
  }
  EXPECT_EQ(openai, (std::set<std::string>{"/v1/models", "/v1/models/{model}", "/v1/models/{org}/{model}",
                                           "/v1/completions", "/v1/chat/completions"}));
  using C = ApiCategory;
  const std::vector<std::tuple<std::string, std::string, C>> expected = {
      {"GET", "/v2/health/live", C::kHealth},
      {"GET", "/v2/health/ready", C::kHealth},
      {"GET", "/v2/models/{model}/versions/{version}/ready", C::kHealth},
      {"GET", "/v2", C::kMetadata},
      {"GET", "/v2/models/{model}", C::kMetadata},
      {"GET", "/v1/models", C::kMetadata},
      {"GET", "/v1/models/{model}", C::kMetadata},
      {"GET", "/v1/models/{org}/{model}", C::kMetadata},
      {"GET", "/version", C::kMetadata},
      {"GET", "/health", C::kHealth},
      {"POST", "/tokenize", C::kInference},
      {"POST", "/detokenize", C::kInference},
      {"POST", "/v2/models/{model}/infer", C::kInference},
      {"POST", "/v2/models/{model}/versions/{version}/generate_stream", C::kInference},
      {"POST", "/v1/chat/completions", C::kInference},
      {"GET", "/v2/models/{model}/config", C::kModelConfig},
      {"GET", "/v2/models/stats", C::kStatistics},
      {"GET", "/v2/models/{model}/stats", C::kStatistics},
      {"POST", "/v2/repository/index", C::kModelRepository},
      {"POST", "/v2/repository/models/{model}/unload", C::kModelRepository},
      {"POST", "/v2/logging", C::kLogging},
      {"GET", "/v2/models/{model}/trace/setting", C::kTrace},
      {"POST", "/v2/cudasharedmemory/region/{region}/register", C::kSharedMemory},
  };
  for (const auto& [method, pattern, category] : expected) {
    bool found = false;
    for (const Router::RouteInfo& route : routes) {
      if (route.method != method || route.pattern != pattern) continue;
      found = true;
      EXPECT_EQ(route.category, category) << method << " " << pattern;
    }
    EXPECT_TRUE(found) << method << " " << pattern;
  }
}

// Under /v1 every error the router answers itself (unknown path, wrong method, a missing key)
// is in OpenAI's shape; elsewhere in Triton's (issue 20: a 404 in Triton's shape broke the
// OpenAI SDK's error handling).
TEST_F(HttpAccessTest, V1ErrorsAreInOpenAIsShapeTritonsElsewhere) {
  http::HttpAccessOptions options;
  options.policy.api_key = kKey;
  Guard(options);
  const std::string auth = std::string("Bearer ") + kKey;
  struct Case {
    std::string method, path;
    bool with_key;
    int status;
    bool openai;
  };
  for (const Case& c : std::vector<Case>{{"GET", "/v1/nothing", true, 404, true},
                                         {"GET", "/v1/chat/completions", true, 405, true},
                                         {"POST", "/v1/completions", false, 401, true},
                                         {"GET", "/tokenize", true, 405, true},
                                         {"GET", "/v2/nothing", true, 404, false},
                                         {"POST", "/v2", true, 405, false},
                                         {"GET", "/v2/models/stats", false, 401, false}}) {
    SCOPED_TRACE(c.method + " " + c.path);
    auto w = Dispatch(c.with_key ? MakeRequest(c.method, c.path, {{"authorization", auth}}) : MakeRequest(c.method, c.path));
    EXPECT_EQ(w->WaitStatus(), c.status);
    auto body = nlohmann::json::parse(w->body(), nullptr, false);
    ASSERT_TRUE(body.is_object()) << w->body();
    if (c.openai) {
      ASSERT_TRUE(body["error"].is_object()) << w->body();
      EXPECT_EQ(body["error"]["code"], c.status) << w->body();
      EXPECT_TRUE(body["error"]["message"].is_string()) << w->body();
      EXPECT_TRUE(body["error"]["type"].is_string()) << w->body();
      EXPECT_TRUE(body["error"].contains("param")) << w->body();
    } else {
      EXPECT_TRUE(body["error"].is_string()) << w->body();
    }
  }
}

TEST_F(HttpAccessTest, ApiKeyOnEveryRouteHealthExempt) {
  http::HttpAccessOptions options;
  options.policy.api_key = kKey;
  Guard(options);
  for (const Router::RouteInfo& route : router_.Routes()) {
    const std::string path = Instantiate(route.pattern);
    const bool health = route.category == ApiCategory::kHealth;
    SCOPED_TRACE(route.method + " " + path);
    auto none = Dispatch(MakeRequest(route.method, path));
    auto wrong = Dispatch(MakeRequest(route.method, path, {{"authorization", "Bearer wrong"}}));
    auto right = Dispatch(
        MakeRequest(route.method, path, {{"authorization", std::string("Bearer ") + kKey}}));
    if (health) {
      EXPECT_NE(none->WaitStatus(), 401);
    } else {
      EXPECT_EQ(none->WaitStatus(), 401);
      EXPECT_EQ(none->Header("WWW-Authenticate"), "Bearer");
      EXPECT_NE(none->body().find("API key"), std::string::npos);
      EXPECT_EQ(none->body().find(kKey), std::string::npos);
      EXPECT_EQ(wrong->WaitStatus(), 401);
    }
    const int status = right->WaitStatus();
    EXPECT_NE(status, 0);
    EXPECT_NE(status, 401);
    EXPECT_NE(status, 403);
  }
}

TEST_F(HttpAccessTest, HealthNeedsTheKeyWhenNotExcluded) {
  http::HttpAccessOptions options;
  options.policy.api_key = kKey;
  options.policy.api_key_exempt_health = false;
  Guard(options);
  for (const Router::RouteInfo& route : router_.Routes()) {
    const std::string path = Instantiate(route.pattern);
    SCOPED_TRACE(route.method + " " + path);
    EXPECT_EQ(Dispatch(MakeRequest(route.method, path))->WaitStatus(), 401);
  }
}

TEST_F(HttpAccessTest, EachRestrictedCategoryNeedsItsHeader) {
  for (size_t i = 0; i < kApiCategoryCount; ++i) {
    const auto category = static_cast<ApiCategory>(i);
    http::HttpAccessOptions options;
    options.policy.restrictions = {
        *ParseApiRestriction(std::string(ApiCategoryName(category)) + ":X-Restricted=open-sesame")};
    Guard(options);
    for (const Router::RouteInfo& route : router_.Routes()) {
      const std::string path = Instantiate(route.pattern);
      SCOPED_TRACE(std::string(ApiCategoryName(category)) + ": " + route.method + " " + path);
      auto none = Dispatch(MakeRequest(route.method, path));
      auto wrong = Dispatch(MakeRequest(route.method, path, {{"x-restricted", "nope"}}));
      auto right = Dispatch(MakeRequest(route.method, path, {{"x-restricted", "open-sesame"}}));
      if (route.category == category) {
        EXPECT_EQ(none->WaitStatus(), 403);
        EXPECT_NE(none->body().find("This API is restricted, expecting header 'x-restricted'"),
                  std::string::npos);
        EXPECT_EQ(wrong->WaitStatus(), 403);
      } else {
        EXPECT_NE(none->WaitStatus(), 403);
      }
      EXPECT_NE(right->WaitStatus(), 403);
    }
  }
}

TEST_F(HttpAccessTest, BrowserSimpleRequestsRefusedOnEveryPost) {
  http::HttpAccessOptions options;
  options.allowed_origins = {"https://ui.example"};
  Guard(options);
  for (const Router::RouteInfo& route : router_.Routes()) {
    if (route.method != "POST") continue;
    const std::string path = Instantiate(route.pattern);
    SCOPED_TRACE(path);
    for (const char* type : {"text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x", "Text/Plain;charset=UTF-8"}) {
      for (const char* origin : {"http://evil.example", "https://ui.example", "null"}) {
        auto w = Dispatch(MakeRequest("POST", path, {{"origin", origin}, {"content-type", type}}));
        EXPECT_EQ(w->WaitStatus(), 403) << origin << " " << type;
      }
    }
    // A disallowed origin is refused even with JSON (it would need a preflight we refuse).
    EXPECT_EQ(
        Dispatch(MakeRequest("POST", path, {{"origin", "http://evil.example"}}))->WaitStatus(),
        403);
    // The allowed origin with JSON, and non-browser clients (no Origin) whatever the type.
    EXPECT_NE(Dispatch(MakeRequest("POST", path, {{"origin", "https://ui.example"}}))->WaitStatus(),
              403);
    EXPECT_NE(
        Dispatch(MakeRequest("POST", path, {{"content-type", "application/x-www-form-urlencoded"}}))
            ->WaitStatus(),
        403);
    EXPECT_NE(Dispatch(MakeRequest("POST", path, {{"content-type", "application/octet-stream"}}))
                  ->WaitStatus(),
              403);
  }
}

TEST_F(HttpAccessTest, DefaultGuardRefusesEveryBrowserPost) {
  router_.SetAccessGuard(http::HttpAccessGuard::Default());
  auto w =
      Dispatch(MakeRequest("POST", "/v2/repository/models/repeat/unload",
                           {{"origin", "http://evil.example"}, {"content-type", "text/plain"}}));
  EXPECT_EQ(w->WaitStatus(), 403);
  EXPECT_NE(w->body().find("origin 'http://evil.example' is not allowed"), std::string::npos);
  EXPECT_EQ(Dispatch(MakeRequest("GET", "/v2/health/live", {{"origin", "http://evil.example"}}))
                ->WaitStatus(),
            200);
}

TEST_F(HttpAccessTest, CorsOnOpenAIRoutes) {
  http::HttpAccessOptions options;
  options.policy.api_key = kKey;
  options.allowed_origins = {"https://ui.example"};
  Guard(options);
  // Preflight: no key needed; allowed origin -> 204 with the CORS headers.
  auto pre =
      Dispatch(MakeRequest("OPTIONS", "/v1/chat/completions",
                           {{"origin", "https://ui.example"},
                            {"access-control-request-method", "POST"},
                            {"access-control-request-headers", "authorization, content-type"}}));
  EXPECT_EQ(pre->WaitStatus(), 204);
  EXPECT_EQ(pre->Header("Access-Control-Allow-Origin"), "https://ui.example");
  EXPECT_EQ(pre->Header("Access-Control-Allow-Methods"), "POST, OPTIONS");
  EXPECT_EQ(pre->Header("Access-Control-Allow-Headers"), "authorization, content-type");
  auto evil = Dispatch(
      MakeRequest("OPTIONS", "/v1/chat/completions",
                  {{"origin", "http://evil.example"}, {"access-control-request-method", "POST"}}));
  EXPECT_EQ(evil->WaitStatus(), 403);
  EXPECT_EQ(evil->Header("Access-Control-Allow-Origin"), "");
  // Replies (refusals included) carry Access-Control-Allow-Origin for the allowed origin.
  auto models = Dispatch(MakeRequest(
      "GET", "/v1/models",
      {{"origin", "https://ui.example"}, {"authorization", std::string("Bearer ") + kKey}}));
  EXPECT_EQ(models->WaitStatus(), 200);
  EXPECT_EQ(models->Header("Access-Control-Allow-Origin"), "https://ui.example");
  EXPECT_EQ(models->Header("Vary"), "Origin");
  auto unauth = Dispatch(MakeRequest("GET", "/v1/models", {{"origin", "https://ui.example"}}));
  EXPECT_EQ(unauth->WaitStatus(), 401);
  EXPECT_EQ(unauth->Header("Access-Control-Allow-Origin"), "https://ui.example");
  auto other = Dispatch(MakeRequest(
      "GET", "/v1/models",
      {{"origin", "http://evil.example"}, {"authorization", std::string("Bearer ") + kKey}}));
  EXPECT_EQ(other->WaitStatus(), 200);
  EXPECT_EQ(other->Header("Access-Control-Allow-Origin"), "");
  // KServe routes answer no preflight.
  EXPECT_EQ(Dispatch(MakeRequest("OPTIONS", "/v2/models/nosuch/infer",
                                 {{"origin", "https://ui.example"}}))
                ->WaitStatus(),
            405);
}

TEST(AllowedOriginsTest, JsonOrCommaList) {
  EXPECT_EQ(*http::ParseAllowedOrigins(R"(["https://a", "http://b:8080"])"),
            (std::vector<std::string>{"https://a", "http://b:8080"}));
  EXPECT_EQ(*http::ParseAllowedOrigins("https://a, http://b:8080,"),
            (std::vector<std::string>{"https://a", "http://b:8080"}));
  EXPECT_TRUE(http::ParseAllowedOrigins("")->empty());
  EXPECT_FALSE(http::ParseAllowedOrigins("[1]").ok());
  EXPECT_FALSE(http::ParseAllowedOrigins("[\"a\"").ok());
}

// ---------------------------------------------------------------- gRPC

TEST(GrpcAccessTest, EveryRpcOfTheServiceHasACategory) {
  const google::protobuf::ServiceDescriptor* service =
      inference::ModelInferRequest::descriptor()->file()->FindServiceByName("GRPCInferenceService");
  ASSERT_NE(service, nullptr);
  ASSERT_GE(service->method_count(), 20);
  for (int i = 0; i < service->method_count(); ++i) {
    EXPECT_TRUE(grpc_frontend::GrpcMethodCategory(service->method(i)->name()).has_value())
        << service->method(i)->name()
        << ": add it to GrpcMethodCategory and AuthorizingGrpcService";
  }
  EXPECT_EQ(grpc_frontend::GrpcMethodCategory("ModelStreamInfer"), ApiCategory::kInference);
  EXPECT_EQ(grpc_frontend::GrpcMethodCategory("RepositoryModelUnload"),
            ApiCategory::kModelRepository);
  EXPECT_EQ(grpc_frontend::GrpcMethodCategory("ModelReady"), ApiCategory::kHealth);
  EXPECT_FALSE(grpc_frontend::GrpcMethodCategory("NoSuchRpc").has_value());
}

}  // namespace
}  // namespace sluice

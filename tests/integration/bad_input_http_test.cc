// Every bad input of issue 2 against the real server: a clear 4xx JSON error, and the
// server keeps serving (each case is followed by a good request).

#include <gtest/gtest.h>

#include <filesystem>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"

namespace sluice::testing {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TestRepository();
    repo_->Add("identity", IdentityConfig("identity"));
    repo_->Add("broken", "name: \"broken\"\nbackend: \"identity\"\nmax_batch: 4\n");
    server_ = new ServerProcess({"--model-repository", repo_->path(), "--model-control-mode", "explicit",
                                 "--load-model", "identity"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
  }
  void SetUp() override {
    ASSERT_TRUE(server_->started());
    http_ = Http(server_->http_port());
  }
  // Sends, expects `status` with a JSON error mentioning `needle`, then a good request.
  void Expect(int status, const std::string& path, const std::string& body, const std::string& needle,
              const client::HttpHeaders& headers = {}) {
    auto r = http_->Request("POST", path, body, headers);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->status, status) << r->body;
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
    EXPECT_NE(j["error"].get<std::string>().find(needle), std::string::npos) << j["error"];
    auto good = Http(server_->http_port())->Post("/v2/models/identity/infer", IdentityBody());
    ASSERT_TRUE(good.ok());
    EXPECT_EQ(good->status, 200) << "the server must keep serving";
  }
  static TestRepository* repo_;
  static ServerProcess* server_;
  std::unique_ptr<client::HttpClient> http_;
};
TestRepository* BadInputTest::repo_ = nullptr;
ServerProcess* BadInputTest::server_ = nullptr;

const std::string kInfer = "/v2/models/identity/infer";

TEST_F(BadInputTest, MalformedJson) { Expect(400, kInfer, "{\"inputs\": [", ""); }

TEST_F(BadInputTest, HundredThousandNestedBrackets) {
  Expect(400, kInfer, std::string(100000, '[') + std::string(100000, ']'), "");
}

// A number no double holds: nlohmann refused it as "malformed JSON: ... number overflow"; the
// error names where it is (a JSON pointer) and the number.
TEST_F(BadInputTest, NumberBeyondADoubleNamesWhereItIs) {
  Expect(400, kInfer,
         R"({"inputs":[{"name":"INPUT0","datatype":"FP64","shape":[2],"data":[1,-1e400]}]})",
         "number -1e400 at '/inputs/0/data/1' is beyond the range of a double");
}

TEST_F(BadInputTest, WrongDatatype) {
  Expect(400, kInfer, R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[2],"data":[1,2]}]})", "INPUT0");
}

TEST_F(BadInputTest, ShapeAndDataSizeMismatch) {
  Expect(400, kInfer, R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[3],"data":[1,2]}]})", "INPUT0");
}

TEST_F(BadInputTest, NegativeDims) {
  Expect(400, kInfer, R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[-2],"data":[]}]})", "");
}

TEST_F(BadInputTest, OverflowingDims) {
  Expect(400, kInfer,
         R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[9223372036854775807, 9223372036854775807],"data":[1]}]})",
         "");
}

TEST_F(BadInputTest, UnknownModelAndVersion) {
  Expect(404, "/v2/models/nope/infer", IdentityBody(), "nope");
  Expect(404, "/v2/models/identity/versions/7/infer", IdentityBody(), "identity");
}

TEST_F(BadInputTest, BinaryExtensionWithLyingHeaderLength) {
  std::string header = R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[2],"parameters":{"binary_data_size":8}}]})";
  std::string body = header + std::string(8, '\0');
  Expect(400, kInfer, body, "", {{"Inference-Header-Content-Length", std::to_string(body.size() + 100)}});
}

TEST_F(BadInputTest, BytesElementWithLengthPrefixPastTheBuffer) {
  std::string header =
      R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1],"data":[1]},)"
      R"({"name":"TEXT","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":7}}]})";
  std::string body = header + std::string("\xff\x00\x00\x00" "abc", 7);
  Expect(400, kInfer, body, "", {{"Inference-Header-Content-Length", std::to_string(header.size())}});
}

TEST_F(BadInputTest, ConfigOverrideThatIsNotJson) {
  Expect(400, "/v2/repository/models/identity/load", R"({"parameters":{"config":"{not json"}})", "");
}

TEST_F(BadInputTest, FileOverrideEscapingTheModelDirWritesNothing) {
  const std::string target = repo_->path() + "/x";
  const bool tmp_x_existed = std::filesystem::exists("/tmp/x");  // someone else's, then
  Expect(400, "/v2/repository/models/identity/load",
         R"({"parameters":{"config":"{\"name\":\"identity\",\"backend\":\"identity\"}","file:../../x":"aGVsbG8="}})",
         "");
  EXPECT_FALSE(std::filesystem::exists(target));
  if (!tmp_x_existed) {
    EXPECT_FALSE(std::filesystem::exists("/tmp/x"));
  }
}

TEST_F(BadInputTest, ModelNameWithDotDot) {
  auto r = http_->Post("/v2/repository/models/../load", "");
  ASSERT_TRUE(r.ok());
  EXPECT_GE(r->status, 400);
  EXPECT_LT(r->status, 500);
  Expect(400, "/v2/repository/models/a..%2F..%2Fetc/load", "", "");
}

TEST_F(BadInputTest, ConfigWithUnknownFieldMakesTheModelUnavailableNamingFieldAndLine) {
  auto r = http_->Post("/v2/repository/models/broken/load", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 400) << r->body;
  auto row = IndexRow(*http_, "broken", "");
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["state"], "UNAVAILABLE");
  const std::string reason = row.value("reason", "");
  EXPECT_NE(reason.find("max_batch"), std::string::npos) << reason;
  EXPECT_NE(reason.find(":3"), std::string::npos) << "names the line: " << reason;
  EXPECT_EQ(reason.find(repo_->path()), std::string::npos) << "no host path: " << reason;
}

}  // namespace
}  // namespace sluice::testing

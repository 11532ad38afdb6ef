// A GPTQ checkpoint through the real server: the bundled demo model, GPTQ-quantized at test
// time (4 bits, groups of 128 with a partial last group, act-order) next to its dequantized
// twin (the same weights in fp32), both served by the built-in engine. Greedy completions
// through the OpenAI API and Triton's generate API are identical token for token; a GPTQ
// configuration Sluice cannot run (3 bits; "quantization": "awq" in model.json) is a 400 at
// load that names it, and the server keeps serving.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"
#include "unit/gptq_fixture.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

std::string DemoConfig(const std::string& name) {
  return "name: \"" + name + "\"\nbackend: \"vllm\"\n"
         "instance_group [ { count: 1 kind: KIND_MODEL } ]\n"
         "model_transaction_policy { decoupled: true }\n";
}

class GptqServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repo_ = new TestRepository();
    const fs::path demo = fs::path(SourceDir()) / "examples/sluice-demo/1/model";
    const std::string model_json = R"({"model": "model", "max_model_len": 512, "max_num_seqs": 8)";
    for (const char* name : {"demo-gptq", "demo-dequant", "demo-gptq3", "demo-awq"}) {
      repo_->Add(name, DemoConfig(name));
      // vLLM's engine argument, as a Triton vLLM-backend user writes it for a GPTQ model.
      const std::string n = name;
      const std::string quantization = n == "demo-gptq"  ? R"(, "quantization": "gptq")"
                                       : n == "demo-awq" ? R"(, "quantization": "awq")"
                                                         : "";
      repo_->Write(std::string(name) + "/1/model.json", model_json + quantization + "}");
    }
    const fs::path root = repo_->path();
    Status st = llm::testing::WriteGptqTwins(demo, root / "demo-gptq/1/model",
                                             root / "demo-dequant/1/model",
                                             {.bits = 4, .group_size = 128, .desc_act = true},
                                             /*seed=*/5);
    ASSERT_TRUE(st.ok()) << st.ToString();
    // The same checkpoint claiming 3 bits, which Sluice does not run.
    fs::copy(root / "demo-gptq/1/model", root / "demo-gptq3/1/model");
    fs::copy(root / "demo-gptq/1/model", root / "demo-awq/1/model");
    std::ifstream in(root / "demo-gptq3/1/model/config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config["quantization_config"]["bits"] = 3;
    std::ofstream(root / "demo-gptq3/1/model/config.json") << config.dump();
    server_ = new ServerProcess({"--model-repository", repo_->path(), "--model-control-mode",
                                 "explicit", "--load-model", "demo-gptq", "--load-model",
                                 "demo-dequant", "--cpu-threads", "2"});
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repo_;
  }
  void SetUp() override { ASSERT_TRUE(server_ != nullptr && server_->started()); }

  static TestRepository* repo_;
  static ServerProcess* server_;
};
TestRepository* GptqServingTest::repo_ = nullptr;
ServerProcess* GptqServingTest::server_ = nullptr;

TEST_F(GptqServingTest, GreedyCompletionsEqualTheDequantizedTwin) {
  auto http = Http(server_->http_port());
  for (const char* prompt : {"Once upon a time", "The meaning of life is", "Q: Why?\nA:"}) {
    std::string text[2];
    int completion_tokens[2] = {0, 0};
    const char* models[2] = {"demo-gptq", "demo-dequant"};
    for (int m = 0; m < 2; ++m) {
      nlohmann::json body = {{"model", models[m]}, {"prompt", prompt}, {"max_tokens", 24},
                             {"temperature", 0}, {"ignore_eos", true}};
      auto r = http->Post("/v1/completions", body.dump());
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->status, 200) << r->body;
      auto j = nlohmann::json::parse(r->body);
      text[m] = j["choices"][0]["text"].get<std::string>();
      completion_tokens[m] = j["usage"]["completion_tokens"].get<int>();
    }
    EXPECT_EQ(completion_tokens[0], 24);
    EXPECT_EQ(completion_tokens[0], completion_tokens[1]);
    EXPECT_FALSE(text[0].empty());
    EXPECT_EQ(text[0], text[1]) << "prompt '" << prompt << "'";
  }
  // Triton's generate API on the GPTQ model gives the same text as the OpenAI API.
  nlohmann::json sampling = {{"temperature", 0}, {"max_tokens", 24}, {"ignore_eos", true}};
  nlohmann::json gen = {{"text_input", "Once upon a time"},
                        {"sampling_parameters", sampling.dump()},
                        {"exclude_input_in_output", true}};
  auto g = http->Post("/v2/models/demo-gptq/generate", gen.dump());
  ASSERT_TRUE(g.ok());
  ASSERT_EQ(g->status, 200) << g->body;
  nlohmann::json body = {{"model", "demo-dequant"}, {"prompt", "Once upon a time"},
                         {"max_tokens", 24}, {"temperature", 0}, {"ignore_eos", true}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(nlohmann::json::parse(g->body)["text_output"],
            nlohmann::json::parse(r->body)["choices"][0]["text"]);
}

TEST_F(GptqServingTest, UnsupportedBitsAreALoadErrorAndTheServerKeepsServing) {
  auto http = Http(server_->http_port());
  auto load = http->Post("/v2/repository/models/demo-gptq3/load", "");
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load->status, 400) << load->body;
  EXPECT_NE(load->body.find("'bits' = 3"), std::string::npos) << load->body;
  // A quantization method in model.json that Sluice does not run.
  auto awq = http->Post("/v2/repository/models/demo-awq/load", "");
  ASSERT_TRUE(awq.ok());
  EXPECT_EQ(awq->status, 400) << awq->body;
  EXPECT_NE(awq->body.find("quantization 'awq'"), std::string::npos) << awq->body;
  nlohmann::json body = {{"model", "demo-gptq"}, {"prompt", "Hello"}, {"max_tokens", 4},
                         {"temperature", 0}};
  auto r = http->Post("/v1/completions", body.dump());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << r->body;
}

}  // namespace
}  // namespace sluice::testing

// A GPTQ checkpoint through the real server: the bundled demo model, GPTQ-quantized at test
// time (4 bits, groups of 128 with a partial last group, act-order) next to its dequantized
// twin (the same weights in fp32), both served by the built-in engine. Greedy completions
// through the OpenAI API and Triton's generate API are identical token for token; a GPTQ
// configuration Sluice cannot run (3 bits; "quantization": "awq" in model.json) and a
// checkpoint that lies (scales of another shape, a g_idx out of range, qzeros missing, the
// file truncated) are each a 400 at load that names the tensor or file, and the server keeps
// serving.

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "integration/http_helpers.h"
#include "integration/server_process.h"
#include "integration/test_repository.h"
#include "support/gptq_fixture.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

std::string DemoConfig(const std::string& name) {
  return "name: \"" + name + "\"\nbackend: \"vllm\"\n"
         "instance_group [ { count: 1 kind: KIND_MODEL } ]\n"
         "model_transaction_policy { decoupled: true }\n";
}

// A tensor of a checkpoint being rewritten.
struct EditableTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::vector<char> data;
};

// Rewrites `file` (safetensors) after `edit` has changed, added or dropped tensors.
void RewriteCheckpoint(const fs::path& file,
                       const std::function<void(std::vector<EditableTensor>&)>& edit) {
  std::vector<EditableTensor> tensors;
  {
    auto st = llm::SafetensorsFile::Open(file);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    for (const llm::SafeTensor& t : (*st)->tensors()) {
      EditableTensor e{t.name, std::string(llm::StDTypeName(t.dtype)), t.shape, {}};
      const char* bytes = reinterpret_cast<const char*>(t.data);
      e.data.assign(bytes, bytes + t.bytes);
      tensors.push_back(std::move(e));
    }
  }
  edit(tensors);
  llm::testing::SafetensorsWriter out;
  for (const EditableTensor& t : tensors) {
    out.Add(t.name, t.dtype.c_str(), t.shape, t.data.data(), t.data.size());
  }
  out.Write(file);
}

EditableTensor& Named(std::vector<EditableTensor>& tensors, const std::string& name) {
  for (EditableTensor& t : tensors) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return tensors.front();
}

constexpr const char* kLies[] = {"demo-lie-shape", "demo-lie-gidx", "demo-lie-qzeros",
                                 "demo-lie-truncated"};

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
    // Checkpoints that lie about their tensors.
    const std::string layer0 = "model.layers.0.";
    for (const char* lie : kLies) {
      repo_->Add(lie, DemoConfig(lie));
      repo_->Write(std::string(lie) + "/1/model.json", model_json + "}");
      fs::copy(root / "demo-gptq/1/model", root / lie / "1/model");
    }
    auto weights = [&root](const char* lie) { return root / lie / "1/model/model.safetensors"; };
    // q_proj's scales swapped with k_proj's: [groups, 64] beside a qweight of 128 columns.
    RewriteCheckpoint(weights("demo-lie-shape"), [&](std::vector<EditableTensor>& t) {
      std::swap(Named(t, layer0 + "self_attn.q_proj.scales").data,
                Named(t, layer0 + "self_attn.k_proj.scales").data);
      std::swap(Named(t, layer0 + "self_attn.q_proj.scales").shape,
                Named(t, layer0 + "self_attn.k_proj.scales").shape);
    });
    RewriteCheckpoint(weights("demo-lie-gidx"), [&](std::vector<EditableTensor>& t) {
      const int32_t far = 100000;
      std::memcpy(Named(t, layer0 + "mlp.up_proj.g_idx").data.data() + 4 * 3, &far, 4);
    });
    RewriteCheckpoint(weights("demo-lie-qzeros"), [&](std::vector<EditableTensor>& t) {
      std::erase_if(t, [&](const EditableTensor& e) { return e.name == layer0 + "self_attn.o_proj.qzeros"; });
    });
    fs::resize_file(weights("demo-lie-truncated"), fs::file_size(weights("demo-lie-truncated")) - 4096);
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

// Each lie is a 400 at load naming the tensor (or the file and the tensor it cuts short), the
// model stays unavailable, and the GPTQ model beside it keeps serving.
TEST_F(GptqServingTest, CheckpointsThatLieAreRefusedAtLoadNamingTheTensor) {
  auto http = Http(server_->http_port());
  const std::map<std::string, std::vector<std::string>> expected = {
      {"demo-lie-shape", {"model.layers.0.self_attn.q_proj.scales' has shape"}},
      {"demo-lie-gidx", {"model.layers.0.mlp.up_proj", "g_idx[3] = 100000"}},
      {"demo-lie-qzeros", {"model.layers.0.self_attn.o_proj.qzeros"}},
      {"demo-lie-truncated", {"model.safetensors: tensor", "outside the data section"}},
  };
  for (const auto& [model, needles] : expected) {
    auto load = http->Post("/v2/repository/models/" + model + "/load", "");
    ASSERT_TRUE(load.ok());
    EXPECT_EQ(load->status, 400) << model << ": " << load->body;
    for (const std::string& needle : needles) {
      EXPECT_NE(load->body.find(needle), std::string::npos)
          << model << ": the error does not name '" << needle << "': " << load->body;
    }
    auto ready = http->Get("/v2/models/" + model + "/ready");
    ASSERT_TRUE(ready.ok());
    EXPECT_NE(ready->status, 200) << model;
    nlohmann::json body = {{"model", "demo-gptq"}, {"prompt", "Hello"}, {"max_tokens", 4},
                           {"temperature", 0}};
    auto r = http->Post("/v1/completions", body.dump());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 200) << "after " << model << ": " << r->body;
  }
}

}  // namespace
}  // namespace sluice::testing

// The engine with structured output on the CPU demo model (examples/sluice-demo, a 4 M
// Qwen2 that knows nothing of JSON): greedy and sampled outputs always parse or match,
// EOS comes only once the document is complete, max_tokens cuts an incomplete document
// with finish_reason "length", and a grammar that fails to compile is refused up front.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "backends/llm/engine/sampler.h"
#include "support/demo_engine.h"

namespace sluice::llm {
namespace {

using structured::StructuredOutputSpec;
using K = StructuredOutputSpec::Kind;

class MaskingDeviceRunner;

struct Demo : testing::DemoEngine {
  MaskingDeviceRunner* device_runner = nullptr;  // owned by core, when MakeDemo(true)
};

// A runner that "samples on its device" the way the CUDA device does with token masks: the
// forward pass, then `before_sampling` (the engine's masks finish filling), then each row
// sampled with its RowSampling's mask. Counts the constrained rows it sampled.
class MaskingDeviceRunner : public ModelRunner {
 public:
  explicit MaskingDeviceRunner(std::unique_ptr<ModelRunner> inner) : inner_(std::move(inner)) {}
  const ModelShape& shape() const override { return inner_->shape(); }
  int32_t block_size() const override { return inner_->block_size(); }
  int32_t num_blocks() const override { return inner_->num_blocks(); }
  Status Forward(const ForwardBatch& batch, std::vector<float>& logits) override {
    return inner_->Forward(batch, logits);
  }
  bool samples_on_device() const override { return true; }
  bool masks_on_device() const override { return true; }
  Status ForwardSample(const ForwardBatch& batch, std::span<const RowSampling> rows,
                       std::vector<int32_t>& tokens, std::vector<float>& logprobs,
                       const std::function<void()>& before_sampling) override {
    std::vector<float> logits;
    RETURN_IF_ERROR(inner_->Forward(batch, logits));
    if (before_sampling) before_sampling();
    const size_t vocab = static_cast<size_t>(shape().vocab_size);
    tokens.clear();
    logprobs.clear();
    int constrained = 0;
    for (const RowSampling& row : rows) constrained += row.allowed.empty() ? 0 : 1;
    max_constrained_rows = std::max(max_constrained_rows, constrained);
    for (size_t r = 0; r < rows.size(); ++r) {
      SamplerInput in{std::span<const float>(logits).subspan(r * vocab, vocab), {}, {}, {}};
      in.allowed = rows[r].allowed;
      constrained_rows += in.allowed.empty() ? 0 : 1;
      SamplingParams p;
      p.temperature = rows[r].temperature;
      std::mt19937_64 rng(rows[r].seed * 1000003 + rows[r].offset);
      const SampledToken t = Sample(in, p, rng);
      tokens.push_back(t.token);
      logprobs.push_back(t.logprob);
    }
    return Status::Ok();
  }
  int constrained_rows = 0;
  int max_constrained_rows = 0;  // in one step

 private:
  std::unique_ptr<ModelRunner> inner_;
};

Demo MakeDemo(bool masks_on_device = false, int32_t max_num_seqs = 8) {
  Demo d;
  auto demo = testing::MakeDemoEngine(
      {.options = [max_num_seqs](EngineOptions& o,
                                 const Tokenizer&) { o.max_num_seqs = max_num_seqs; },
       .runner = [&](std::unique_ptr<ModelRunner> runner) -> std::unique_ptr<ModelRunner> {
         if (!masks_on_device) return runner;
         auto device = std::make_unique<MaskingDeviceRunner>(std::move(runner));
         d.device_runner = device.get();
         return device;
       }});
  EXPECT_TRUE(demo.ok()) << demo.status().ToString();
  if (demo.ok()) static_cast<testing::DemoEngine&>(d) = std::move(*demo);
  return d;
}

using testing::Generated;

// Runs the requests to completion; results by request id.
std::map<std::string, Generated> RunAll(Demo& d, std::vector<EngineRequest> reqs) {
  std::map<std::string, Generated> out;
  for (EngineRequest& r : reqs) {
    r.on_output = testing::CollectInto(out[r.request_id]);
    d.core->AddRequest(std::move(r), EngineCore::Clock::now());
  }
  testing::RunToCompletion(*d.core, 10000);
  return out;
}

EngineRequest Request(Demo& d, const std::string& id, StructuredOutputSpec spec, float temperature,
                      int32_t max_tokens, int64_t seed) {
  EngineRequest r;
  r.request_id = id;
  r.prompt_token_ids = *d.tok->Encode("Once upon a time", false);
  r.params.temperature = temperature;
  r.params.max_tokens = max_tokens;
  r.params.seed = seed;
  r.params.structured_output = std::move(spec);
  return r;
}

std::string Text(Demo& d, const Generated& g) {
  return d.tok->Decode(g.tokens, true);
}

const char* kSchema = R"({"type":"object","properties":{"name":{"type":"string","maxLength":12},
  "age":{"type":"integer"},"pets":{"type":"array","items":{"enum":["cat","dog"]},"maxItems":3}},
  "required":["name","age","pets"],"additionalProperties":false})";

void CheckPerson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text);  // throws (fails the test) if invalid
  ASSERT_TRUE(j.is_object()) << text;
  ASSERT_EQ(j.size(), 3u) << text;
  EXPECT_TRUE(j["name"].is_string());
  EXPECT_LE(j["name"].get<std::string>().size(), 12u * 4);
  EXPECT_TRUE(j["age"].is_number_integer());
  ASSERT_TRUE(j["pets"].is_array());
  EXPECT_LE(j["pets"].size(), 3u);
  for (const auto& p : j["pets"]) EXPECT_TRUE(p == "cat" || p == "dog") << text;
}

TEST(EngineStructuredOutputTest, JsonSchemaGreedyAndSampledOutputsAlwaysParse) {
  Demo d = MakeDemo();
  std::vector<EngineRequest> reqs;
  reqs.push_back(Request(d, "greedy", {K::kJsonSchema, kSchema}, 0.0f, 200, 1));
  for (int i = 0; i < 6; ++i) {
    reqs.push_back(
        Request(d, "sampled" + std::to_string(i), {K::kJsonSchema, kSchema}, 1.0f, 200, 100 + i));
  }
  auto out = RunAll(d, std::move(reqs));
  ASSERT_EQ(out.size(), 7u);
  int complete = 0;
  for (auto& [id, g] : out) {
    ASSERT_TRUE(g.error.ok()) << id << ": " << g.error.ToString();
    if (g.finish == FinishReason::kStop) {
      ++complete;
      ASSERT_NO_THROW(CheckPerson(Text(d, g))) << id << ": " << Text(d, g);
    } else {
      EXPECT_EQ(g.finish, FinishReason::kLength) << id;
      EXPECT_EQ(g.tokens.size(), 200u) << id;
    }
  }
  EXPECT_GE(complete, 4) << "most documents should complete within 200 tokens";
}

TEST(EngineStructuredOutputTest, RegexChoiceAndGrammarOutputsMatch) {
  Demo d = MakeDemo();
  std::vector<EngineRequest> reqs;
  for (int i = 0; i < 4; ++i) {
    const float t = i == 0 ? 0.0f : 1.0f;
    reqs.push_back(Request(d, "regex" + std::to_string(i),
                           {K::kRegex, R"([A-Z][a-z]{2,8} (is|was) [0-9]{1,3}\.)"}, t, 64, i));
    reqs.push_back(Request(d, "choice" + std::to_string(i),
                           {K::kChoice, R"(["yes","no","a fortune"])"}, t, 64, i));
    reqs.push_back(Request(
        d, "gbnf" + std::to_string(i),
        {K::kGrammar, "root ::= item (\", \" item){0,3} \".\"\nitem ::= [a-z]+\n"}, t, 64, i));
  }
  auto out = RunAll(d, std::move(reqs));
  for (auto& [id, g] : out) {
    ASSERT_TRUE(g.error.ok()) << id << ": " << g.error.ToString();
    const std::string text = Text(d, g);
    if (g.finish == FinishReason::kLength) continue;  // allowed, but then never "stop"
    ASSERT_EQ(g.finish, FinishReason::kStop) << id;
    if (id.starts_with("regex")) {
      EXPECT_TRUE(std::regex_match(text, std::regex(R"([A-Z][a-z]{2,8} (is|was) [0-9]{1,3}\.)")))
          << text;
    } else if (id.starts_with("choice")) {
      EXPECT_TRUE(text == "yes" || text == "no" || text == "a fortune") << text;
    } else {
      EXPECT_TRUE(std::regex_match(text, std::regex(R"([a-z]+(, [a-z]+){0,3}\.)"))) << text;
    }
  }
}

TEST(EngineStructuredOutputTest, MaxTokensCutsAnIncompleteDocumentWithLength) {
  Demo d = MakeDemo();
  std::vector<EngineRequest> reqs;
  reqs.push_back(Request(d, "short", {K::kJsonSchema, kSchema}, 0.0f, 3, 1));
  auto out = RunAll(d, std::move(reqs));
  EXPECT_EQ(out["short"].finish, FinishReason::kLength);
  EXPECT_EQ(out["short"].tokens.size(), 3u);
}

TEST(EngineStructuredOutputTest, EosOnlyAfterACompleteDocument) {
  Demo d = MakeDemo();
  // "(ab)+" can end after any "ab" but may also go on: the model must choose EOS itself,
  // and may only do so after an even number of letters.
  std::vector<EngineRequest> reqs;
  for (int i = 0; i < 4; ++i)
    reqs.push_back(Request(d, "r" + std::to_string(i), {K::kRegex, "(ab)+"}, 1.0f, 40, i));
  auto out = RunAll(d, std::move(reqs));
  for (auto& [id, g] : out) {
    ASSERT_TRUE(g.error.ok()) << g.error.ToString();
    const std::string text = Text(d, g);
    if (g.finish == FinishReason::kStop) {
      EXPECT_TRUE(std::regex_match(text, std::regex("(ab)+"))) << text;
    } else {
      EXPECT_TRUE(std::regex_match(text, std::regex("(ab)*a?"))) << text;
    }
  }
}

TEST(EngineStructuredOutputTest, BadGrammarsAreRefusedNamingTheProblem) {
  Demo d = MakeDemo();
  EngineRequest r = Request(d, "bad", {K::kJsonSchema, R"({"type":"object","foo":1})"}, 0.0f, 8, 1);
  Status st = d.core->PrepareStructuredOutput(r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("keyword 'foo' is not supported"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("structured output (json_schema)"), std::string::npos)
      << st.message();
  // Straight into the core: a final error output instead.
  std::vector<EngineRequest> reqs;
  reqs.push_back(Request(d, "bad2", {K::kRegex, "(a)\\1"}, 0.0f, 8, 1));
  auto out = RunAll(d, std::move(reqs));
  EXPECT_EQ(out["bad2"].error.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(out["bad2"].error.message().find("backreference"), std::string::npos);
}

// A device that applies token masks samples the constrained rows itself (no logits to the
// host): greedy outputs equal the host sampler's, sampled ones still match their grammars.
TEST(EngineStructuredOutputTest, DeviceMasksGiveTheHostSamplersOutputs) {
  const char* kRegex = R"([A-Z][a-z]{2,8} (is|was) [0-9]{1,3}\.)";
  auto requests = [&](Demo& d) {
    std::vector<EngineRequest> reqs;
    reqs.push_back(Request(d, "schema", {K::kJsonSchema, kSchema}, 0.0f, 200, 1));
    reqs.push_back(Request(d, "regex", {K::kRegex, kRegex}, 0.0f, 64, 1));
    reqs.push_back(Request(d, "free", {K::kRegex, "x"}, 0.0f, 24, 1));
    reqs.back().params.structured_output.reset();  // an unconstrained row beside them
    for (int i = 0; i < 3; ++i) {
      reqs.push_back(Request(d, "sampled" + std::to_string(i), {K::kRegex, kRegex}, 1.0f, 64, i));
    }
    return reqs;
  };
  Demo host = MakeDemo();
  auto want = RunAll(host, requests(host));
  Demo device = MakeDemo(/*masks_on_device=*/true);
  auto got = RunAll(device, requests(device));
  for (const char* id : {"schema", "regex", "free"}) {
    ASSERT_TRUE(got[id].error.ok()) << id << ": " << got[id].error.ToString();
    EXPECT_EQ(got[id].tokens, want[id].tokens) << id << ": " << Text(device, got[id]);
    EXPECT_EQ(got[id].finish, want[id].finish) << id;
  }
  ASSERT_NO_THROW(CheckPerson(Text(device, got["schema"])));
  for (int i = 0; i < 3; ++i) {
    const Generated& g = got["sampled" + std::to_string(i)];
    if (g.finish == FinishReason::kStop) {
      EXPECT_TRUE(std::regex_match(Text(device, g), std::regex(kRegex))) << Text(device, g);
    }
  }
  ASSERT_NE(device.device_runner, nullptr);
  EXPECT_GT(device.device_runner->constrained_rows, 0);
}

// Sixteen or more constrained rows sampled on the device: their grammars take the sampled
// tokens on other threads before the engine processes them (EngineCore::AcceptAhead), with
// the same outputs as the host sampler and documents that parse.
TEST(EngineStructuredOutputTest, ManyDeviceRowsAcceptTheirTokensAhead) {
  const char* kRegex = R"([A-Z][a-z]{2,8} (is|was) [0-9]{1,3}\.)";
  auto requests = [&](Demo& d) {
    std::vector<EngineRequest> reqs;
    for (int i = 0; i < 12; ++i) {
      reqs.push_back(
          Request(d, "schema" + std::to_string(i), {K::kJsonSchema, kSchema}, 0.0f, 200, 1));
      reqs.push_back(Request(d, "regex" + std::to_string(i), {K::kRegex, kRegex}, 0.0f, 64, 1));
    }
    return reqs;
  };
  Demo host = MakeDemo(/*masks_on_device=*/false, /*max_num_seqs=*/32);
  auto want = RunAll(host, requests(host));
  Demo device = MakeDemo(/*masks_on_device=*/true, /*max_num_seqs=*/32);
  auto got = RunAll(device, requests(device));
  for (int i = 0; i < 12; ++i) {
    for (const std::string& id : {"schema" + std::to_string(i), "regex" + std::to_string(i)}) {
      ASSERT_TRUE(got[id].error.ok()) << id << ": " << got[id].error.ToString();
      EXPECT_EQ(got[id].tokens, want[id].tokens) << id << ": " << Text(device, got[id]);
      EXPECT_EQ(got[id].finish, want[id].finish) << id;
    }
    ASSERT_NO_THROW(CheckPerson(Text(device, got["schema" + std::to_string(i)])));
  }
  ASSERT_NE(device.device_runner, nullptr);
  EXPECT_GE(device.device_runner->max_constrained_rows, 16);
}

}  // namespace
}  // namespace sluice::llm

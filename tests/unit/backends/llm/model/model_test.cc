// The decoder model on the CPU device against the transformers reference
// (tests/fixtures/models, written by scripts/make_test_models.py in float64): prompt logits
// with relative error <= 1e-4 through chunked prefill over a paged KV cache (block size 16,
// scattered blocks), and 32 greedy tokens equal, with prefill chunks and decodes of several
// sequences mixed in each step. Every dtype variant (fp32, bf16, fp16, sharded) holds the
// same bf16-exact weights, so all share one reference.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/model/decoder_model.h"
#include "backends/llm/model/model_loader.h"
#include "support/block_pool.h"
#include "support/model_fixtures.h"

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;

using testing::kFixtures;
using testing::LoadReference;
using testing::ModelCase;

std::unique_ptr<DecoderModel> OpenModel(const fs::path& folder, int32_t num_blocks,
                                        int threads = 2) {
  auto device = CreateCpuDevice({.threads = threads});
  EXPECT_TRUE(device.ok());
  auto model = DecoderModel::Create(folder, std::move(*device),
                                    {.num_blocks = num_blocks, .block_size = 16});
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

double RowRelErr(const float* got, const nlohmann::json& ref) {
  double max_diff = 0, max_ref = 1e-30;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i].get<double>();
    max_diff = std::max(max_diff, std::abs(got[i] - r));
    max_ref = std::max(max_ref, std::abs(r));
  }
  return max_diff / max_ref;
}

int32_t Argmax(const float* row, int32_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

using testing::BlockPool;

class ModelTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelTest, ChunkedPrefillLogitsMatchTransformers) {
  auto model = OpenModel(kFixtures / GetParam().folder, 64);
  ASSERT_NE(model, nullptr);
  const auto ref = LoadReference(GetParam().reference);
  const int32_t vocab = model->shape().vocab_size;
  BlockPool blocks(64, 1);
  for (const auto& c : ref["cases"]) {
    const auto prompt = c["prompt"].get<std::vector<int32_t>>();
    const auto positions = c["logit_positions"].get<std::vector<int32_t>>();
    // Chunks end at each reference position, so each chunk's logits are a reference row.
    SequenceStep seq;
    int32_t done = 0;
    for (size_t i = 0; i < positions.size(); ++i) {
      const int32_t end = positions[i] + 1;
      ForwardBatch batch;
      batch.tokens.assign(prompt.begin() + done, prompt.begin() + end);
      seq.num_cached_tokens = done;
      seq.num_new_tokens = end - done;
      seq.needs_logits = true;
      blocks.Cover(seq.block_table, end, 16);
      batch.seqs = {seq};
      std::vector<float> logits;
      ASSERT_TRUE(model->Forward(batch, logits).ok());
      ASSERT_EQ(logits.size(), static_cast<size_t>(vocab));
      EXPECT_LE(RowRelErr(logits.data(), c["logits"][i]), 1e-4)
          << "prompt of " << prompt.size() << " tokens, position " << positions[i];
      done = end;
    }
    // The whole prompt in one chunk gives the same last row.
    ForwardBatch whole;
    whole.tokens = prompt;
    SequenceStep s;
    s.num_new_tokens = static_cast<int32_t>(prompt.size());
    s.needs_logits = true;
    blocks.Cover(s.block_table, s.num_new_tokens, 16);
    whole.seqs = {s};
    std::vector<float> logits;
    ASSERT_TRUE(model->Forward(whole, logits).ok());
    EXPECT_LE(RowRelErr(logits.data(), c["logits"].back()), 1e-4);
  }
}

// All prompts at once; prompts are prefilled in chunks of at most 16 tokens while the
// others decode, so steps mix prefill chunks with decodes.
TEST_P(ModelTest, BatchedGreedyMatchesTransformers) {
  auto model = OpenModel(kFixtures / GetParam().folder, 40);
  ASSERT_NE(model, nullptr);
  const auto ref = LoadReference(GetParam().reference);
  const int32_t vocab = model->shape().vocab_size;
  struct Seq {
    std::vector<int32_t> tokens;  // prompt + generated
    size_t prompt_len = 0;
    int32_t computed = 0;  // tokens in the KV cache
    std::vector<int32_t> table;
    std::vector<int32_t> expected;
  };
  std::vector<Seq> seqs;
  for (const auto& c : ref["cases"]) {
    Seq s;
    s.tokens = c["prompt"].get<std::vector<int32_t>>();
    s.prompt_len = s.tokens.size();
    s.expected = c["greedy"].get<std::vector<int32_t>>();
    seqs.push_back(std::move(s));
  }
  BlockPool blocks(40, 2);
  bool mixed_step_seen = false;
  for (int step = 0; step < 100; ++step) {
    ForwardBatch batch;
    std::vector<Seq*> wants_logits;
    bool has_prefill = false, has_decode = false;
    for (auto& s : seqs) {
      if (s.tokens.size() - s.prompt_len >= s.expected.size()) continue;
      const int32_t pending = static_cast<int32_t>(s.tokens.size()) - s.computed;
      const int32_t n = std::min(pending, 16);
      SequenceStep st;
      st.num_cached_tokens = s.computed;
      st.num_new_tokens = n;
      st.needs_logits = (s.computed + n == static_cast<int32_t>(s.tokens.size()));
      blocks.Cover(s.table, s.computed + n, 16);
      st.block_table = s.table;
      batch.tokens.insert(batch.tokens.end(), s.tokens.begin() + s.computed,
                          s.tokens.begin() + s.computed + n);
      batch.seqs.push_back(st);
      (s.computed < static_cast<int32_t>(s.prompt_len) ? has_prefill : has_decode) = true;
      s.computed += n;
      if (st.needs_logits) wants_logits.push_back(&s);
    }
    if (batch.seqs.empty()) break;
    mixed_step_seen |= has_prefill && has_decode;
    std::vector<float> logits;
    ASSERT_TRUE(model->Forward(batch, logits).ok());
    ASSERT_EQ(logits.size(), wants_logits.size() * vocab);
    for (size_t i = 0; i < wants_logits.size(); ++i) {
      wants_logits[i]->tokens.push_back(Argmax(logits.data() + i * vocab, vocab));
    }
  }
  EXPECT_TRUE(mixed_step_seen);
  for (const auto& s : seqs) {
    std::vector<int32_t> got(s.tokens.begin() + s.prompt_len, s.tokens.end());
    EXPECT_EQ(got, s.expected) << "prompt of " << s.prompt_len << " tokens";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ModelTest,
                         ::testing::Values(ModelCase{"qwen2_fp32", "reference_qwen2.json"},
                                           ModelCase{"qwen2_bf16", "reference_qwen2.json"},
                                           ModelCase{"qwen2_fp16", "reference_qwen2.json"},
                                           ModelCase{"llama3_fp32", "reference_llama3.json"},
                                           ModelCase{"llama3_bf16", "reference_llama3.json"}),
                         [](const auto& info) { return std::string(info.param.folder); });

TEST(DecoderModelTest, ExposesShapeAndGenerationConfig) {
  auto model = OpenModel(kFixtures / "qwen2_bf16", 8);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->shape().vocab_size, 512);
  EXPECT_EQ(model->shape().num_layers, 2);
  EXPECT_EQ(model->shape().num_kv_heads, 2);
  EXPECT_EQ(model->shape().head_dim, 16);
  EXPECT_EQ(model->shape().max_position_embeddings, 256);
  EXPECT_EQ(model->block_size(), 16);
  EXPECT_EQ(model->num_blocks(), 8);
  EXPECT_EQ(model->generation_config().eos_token_ids.size(), 2u);
  EXPECT_TRUE(model->config().tie_word_embeddings);
  EXPECT_EQ(KvBytesPerBlock(model->config(), 16, DType::kF32), 2u * 2 * 16 * 2 * 16 * 4);
}

TEST(ModelLoaderTest, SizesTheKvCache) {
  const fs::path folder = kFixtures / "llama3_bf16";
  auto m = LoadModel(folder, {.cpu_threads = 1, .num_blocks = 7});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->num_blocks(), 7);
  // Llama fixture: 2 layers x K,V x 16 slots x 2 kv heads x 32 dims x fp32.
  const size_t per_block = 2 * 2 * 16 * 2 * 32 * 4;
  EXPECT_EQ(KvBytesPerBlock((*m)->config(), 16, (*m)->device().activation_dtype()), per_block);
  m = LoadModel(folder,
                {.cpu_threads = 1, .kv_cache_bytes = per_block * 10 + 5, .max_model_len = 100});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->num_blocks(), 10);
  EXPECT_EQ((*m)->shape().max_position_embeddings, 100);
  m = LoadModel(folder, {.kv_cache_bytes = per_block - 1});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  m = LoadModel(folder, {.num_blocks = 4, .max_model_len = 257});
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("max_position_embeddings"), std::string::npos);
}

TEST(DecoderModelTest, RejectsInvalidBatches) {
  auto model = OpenModel(kFixtures / "qwen2_fp32", 4);
  ASSERT_NE(model, nullptr);
  auto expect_invalid = [&](ForwardBatch b, const std::string& needle) {
    std::vector<float> logits;
    Status st = model->Forward(b, logits);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  ForwardBatch ok{{1, 2, 3}, {SequenceStep{0, 3, {0}, true}}};
  std::vector<float> logits;
  ASSERT_TRUE(model->Forward(ok, logits).ok());
  expect_invalid({{1, 2, 3}, {SequenceStep{0, 3, {4}, true}}}, "block id 4");
  expect_invalid({{1, 2, 3}, {SequenceStep{0, 3, {-1}, true}}}, "block id -1");
  expect_invalid({{1, 2, 3}, {SequenceStep{15, 3, {0}, true}}}, "block table");
  expect_invalid({{1, 512, 3}, {SequenceStep{0, 3, {0}, true}}}, "token id 512");
  expect_invalid({{1, 2}, {SequenceStep{0, 3, {0}, true}}}, "add up");
  expect_invalid({{}, {}}, "no sequences");
  expect_invalid({{1}, {SequenceStep{256, 1, {0, 1, 2, 3}, true}}}, "context limit");
}

TEST(DecoderModelTest, LoadErrorsNameTheTensor) {
  const fs::path dir = fs::temp_directory_path() / ("sluice_model_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(kFixtures / "qwen2_fp32/model.safetensors", dir / "model.safetensors");
  auto config = nlohmann::json::parse(std::ifstream(kFixtures / "qwen2_fp32/config.json"));
  auto write_config = [&](const nlohmann::json& j) {
    std::ofstream(dir / "config.json") << j.dump();
  };
  auto load = [&] {
    auto device = CreateCpuDevice({.threads = 1});
    return DecoderModel::Create(dir, std::move(*device), {.num_blocks = 4, .block_size = 16});
  };

  auto j = config;
  j["num_hidden_layers"] = 3;
  write_config(j);
  auto r = load();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'model.layers.2.input_layernorm.weight' is missing"),
            std::string::npos)
      << r.status().message();

  j = config;
  j["intermediate_size"] = 100;
  write_config(j);
  r = load();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("model.safetensors: tensor 'model.layers.0.mlp.gate_proj.weight' "
                                "has shape [128, 64], expected [100, 64]"),
      std::string::npos)
      << r.status().message();

  j = config;
  j["tie_word_embeddings"] = false;
  write_config(j);
  r = load();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'lm_head.weight' is missing"), std::string::npos);

  write_config(config);
  EXPECT_TRUE(load().ok());
  fs::remove(dir / "config.json");
  r = load();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find(dir.string()), std::string::npos) << r.status().message();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace sluice::llm

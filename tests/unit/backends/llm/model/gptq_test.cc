// GPTQ checkpoints on the CPU device. The quantizer below writes AutoGPTQ's layout the way
// its QuantLinear.pack does (qweight rows of 32 / bits input rows, lowest bits first; qzeros
// packed along the output; the v1 "gptq" format storing zero - 1; g_idx), independently of
// the loader. Checked: the GPTQ linear against a float64 product with the dequantized
// weights (4 and 8 bits, group sizes, act-order, v2 zeros, decode and prefill row counts);
// a GPTQ copy of the qwen2 fixture against the same model with those dequantized weights
// stored as fp32 (logits and greedy tokens); config and tensor errors named.

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/device/cpu/half.h"
#include "backends/llm/model/decoder_model.h"
#include "backends/llm/model/hf_config.h"
#include "backends/llm/model/safetensors.h"
#include "support/block_pool.h"
#include "support/gptq_fixture.h"
#include "support/model_fixtures.h"

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;
using testing::BlockPool;
using testing::kFixtures;
using testing::LoadReference;
using testing::Quantize;
using testing::Quantized;
using testing::QuantSpec;
using testing::RandomNormal;
using testing::SourceOf;

std::mt19937_64 FreshRng() {
  const uint64_t seed = std::random_device{}();
  std::cout << "[ seed     ] " << seed << "\n";
  return std::mt19937_64(seed);
}

TEST(GptqLinearTest, MatchesFloat64ProductWithDequantizedWeights) {
  std::mt19937_64 rng = FreshRng();
  struct Case {
    int32_t in, out;
    QuantSpec spec;
  };
  const Case cases[] = {
      {256, 96, {4, 64, false, false}}, {128, 64, {8, -1, false, false}},
      {512, 136, {4, 32, true, false}}, {200, 72, {4, 128, false, true}},
      {384, 40, {8, 128, true, false}}, {1024, 64, {4, 128, false, false}},
  };
  // The AVX2 kernels (where the CPU has them) and the portable ones.
  for (CpuKernels kernels : {CpuKernels::kAuto, CpuKernels::kPortable}) {
    auto device = CreateCpuDevice({.threads = 2, .kernels = kernels});
    ASSERT_TRUE(device.ok());
    Device& d = **device;
    for (const Case& c : cases) {
      const auto w = RandomNormal(rng, static_cast<size_t>(c.out) * c.in, 0.05f);
      const Quantized q = Quantize(w, c.out, c.in, c.spec, rng);
      GptqWeightSource source = SourceOf(q, c.spec);
      // Without act-order, g_idx is implied (i / group_size): also run without the tensor.
      if (!c.spec.desc_act && c.in % 3 == 2) source.g_idx = nullptr;
      auto weight = d.LoadGptqWeight(source);
      ASSERT_TRUE(weight.ok()) << weight.status().ToString();
      const auto bias = RandomNormal(rng, c.out, 0.1f);
      auto bias_buf = d.LoadWeight(DType::kF32, bias.data(), bias.size(), nullptr);
      ASSERT_TRUE(bias_buf.ok());
      for (int32_t rows : {1, 3, 17}) {
        for (bool with_bias : {false, true}) {
          const auto x = RandomNormal(rng, static_cast<size_t>(rows) * c.in, 1.f);
          auto xb = d.Allocate(DType::kF32, x.size());
          auto yb = d.Allocate(DType::kF32, static_cast<size_t>(rows) * c.out);
          ASSERT_TRUE(xb.ok() && yb.ok());
          ASSERT_TRUE(d.Upload(**xb, x.data(), x.size() * sizeof(float)).ok());
          std::vector<float> y(static_cast<size_t>(rows) * c.out, std::nanf(""));
          ASSERT_TRUE(d.Upload(**yb, y.data(), y.size() * sizeof(float)).ok());  // poisoned
          d.Linear(**xb, **weight, with_bias ? bias_buf->get() : nullptr, rows, c.in, c.out, **yb);
          ASSERT_TRUE(d.Download(**yb, y.data(), y.size() * sizeof(float)).ok());
          double max_diff = 0, max_ref = 0;
          for (int32_t m = 0; m < rows; ++m) {
            for (int32_t j = 0; j < c.out; ++j) {
              double ref = with_bias ? bias[j] : 0.0;
              for (int32_t i = 0; i < c.in; ++i) {
                ref += double{x[static_cast<size_t>(m) * c.in + i]} *
                       q.dequant[static_cast<size_t>(j) * c.in + i];
              }
              const double got = y[static_cast<size_t>(m) * c.out + j];
              ASSERT_TRUE(std::isfinite(got)) << "row " << m << " column " << j << " not written";
              max_diff = std::max(max_diff, std::abs(got - ref));
              max_ref = std::max(max_ref, std::abs(ref));
            }
          }
          EXPECT_LE(max_diff / max_ref, 1e-5)
              << c.in << "x" << c.out << " bits " << c.spec.bits << " group " << c.spec.group_size
              << " act-order " << c.spec.desc_act << " v2 " << c.spec.v2 << " rows " << rows
              << (kernels == CpuKernels::kPortable ? " (portable)" : "");
        }
      }
    }
  }
}

TEST(GptqLinearTest, BadQuantizedDataIsAnError) {
  std::mt19937_64 rng(7);
  auto device = CreateCpuDevice({.threads = 1});
  ASSERT_TRUE(device.ok());
  const QuantSpec spec{4, 32, false, false};
  const auto w = RandomNormal(rng, 64 * 64, 0.05f);
  Quantized q = Quantize(w, 64, 64, spec, rng);
  q.g_idx[5] = 2;  // 64 rows in groups of 32: only 0 and 1 exist
  auto bad_group = (*device)->LoadGptqWeight(SourceOf(q, spec));
  ASSERT_FALSE(bad_group.ok());
  EXPECT_NE(bad_group.status().message().find("g_idx[5] = 2"), std::string::npos)
      << bad_group.status().ToString();
  GptqWeightSource odd = SourceOf(q, spec);
  odd.in = 60;  // not a whole number of 8-row words
  EXPECT_FALSE((*device)->LoadGptqWeight(odd).ok());
  GptqWeightSource three = SourceOf(q, spec);
  three.bits = 3;
  auto st = (*device)->LoadGptqWeight(three);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("3 bits"), std::string::npos);
}

TEST(GptqConfigTest, ParsesAndRejectsQuantizationConfigs) {
  auto config = [](nlohmann::json q) {
    nlohmann::json j = {{"architectures", {"Qwen2ForCausalLM"}},
                        {"vocab_size", 64},
                        {"hidden_size", 32},
                        {"intermediate_size", 64},
                        {"num_hidden_layers", 1},
                        {"num_attention_heads", 4},
                        {"max_position_embeddings", 128},
                        {"quantization_config", std::move(q)}};
    return ParseHfModelConfig(j);
  };
  // Qwen2-7B-Instruct-GPTQ-Int4's quantization_config.
  auto int4 = config({{"bits", 4},
                      {"group_size", 128},
                      {"damp_percent", 0.01},
                      {"desc_act", false},
                      {"static_groups", false},
                      {"sym", true},
                      {"true_sequential", true},
                      {"quant_method", "gptq"}});
  ASSERT_TRUE(int4.ok()) << int4.status().ToString();
  ASSERT_TRUE(int4->gptq.has_value());
  EXPECT_EQ(int4->gptq->bits, 4);
  EXPECT_EQ(int4->gptq->pack(), 8);
  EXPECT_EQ(int4->gptq->zero_offset, 1);
  EXPECT_EQ(int4->gptq->groups(3584), 28);
  auto v2 = config({{"bits", 8},
                    {"group_size", -1},
                    {"quant_method", "gptq"},
                    {"checkpoint_format", "gptq_v2"}});
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->gptq->zero_offset, 0);
  EXPECT_EQ(v2->gptq->groups(18944), 1);

  auto awq = config({{"bits", 4}, {"quant_method", "awq"}});
  ASSERT_FALSE(awq.ok());
  EXPECT_NE(awq.status().message().find("quant_method 'awq'"), std::string::npos);
  auto three = config({{"bits", 3}, {"quant_method", "gptq"}});
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("'bits' = 3"), std::string::npos);
  auto zero_group = config({{"bits", 4}, {"group_size", 0}, {"quant_method", "gptq"}});
  ASSERT_FALSE(zero_group.ok());
  EXPECT_NE(zero_group.status().message().find("group_size"), std::string::npos);
  auto marlin = config({{"bits", 4}, {"quant_method", "gptq"}, {"checkpoint_format", "marlin"}});
  ASSERT_FALSE(marlin.ok());
  EXPECT_NE(marlin.status().message().find("checkpoint_format 'marlin'"), std::string::npos);
}

// --- A GPTQ copy of the qwen2 fixture ---

// max |got - ref| / max |ref| over two logits rows.
double RelErr(const std::vector<float>& got, const std::vector<float>& ref) {
  double max_diff = 0, max_ref = 0;
  for (size_t v = 0; v < ref.size(); ++v) {
    max_diff = std::max(max_diff, double{std::abs(got[v] - ref[v])});
    max_ref = std::max(max_ref, double{std::abs(ref[v])});
  }
  return max_diff / max_ref;
}

class GptqModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("sluice_gptq_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "gptq");
    fs::create_directories(dir_ / "dequant");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // dir_/gptq: the qwen2 fixture with its linear layers GPTQ-quantized per `spec`;
  // dir_/dequant: the same model with the dequantized weights in fp32.
  void WriteModels(const QuantSpec& spec, const std::string& leave_out = "") {
    Status st = testing::WriteGptqTwins(kFixtures / "qwen2_fp32", dir_ / "gptq", dir_ / "dequant",
                                        spec, 11, leave_out);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  static Result<std::unique_ptr<DecoderModel>> Open(const fs::path& folder) {
    ASSIGN_OR_RETURN(auto device, CreateCpuDevice({.threads = 2}));
    return DecoderModel::Create(folder, std::move(device), {.num_blocks = 64, .block_size = 16});
  }

  fs::path dir_;
};

TEST_F(GptqModelTest, LogitsAndGreedyTokensEqualTheDequantizedModel) {
  for (const QuantSpec& spec : {QuantSpec{4, 32, false, false}, QuantSpec{8, -1, false, false},
                                QuantSpec{4, 16, true, false}}) {
    fs::remove_all(dir_ / "gptq");
    fs::remove_all(dir_ / "dequant");
    fs::create_directories(dir_ / "gptq");
    fs::create_directories(dir_ / "dequant");
    WriteModels(spec);
    auto gptq = Open(dir_ / "gptq");
    ASSERT_TRUE(gptq.ok()) << gptq.status().ToString();
    auto dequant = Open(dir_ / "dequant");
    ASSERT_TRUE(dequant.ok()) << dequant.status().ToString();
    const auto ref = LoadReference("reference_qwen2.json");
    const int32_t vocab = (*gptq)->shape().vocab_size;
    for (const auto& c : ref["cases"]) {
      BlockPool blocks(64, 1);
      std::vector<int32_t> tokens = c["prompt"].get<std::vector<int32_t>>();
      // The prompt, then 16 greedy tokens one step at a time on both models.
      SequenceStep seq;
      seq.num_new_tokens = static_cast<int32_t>(tokens.size());
      seq.needs_logits = true;
      std::vector<int32_t> next = tokens;
      for (int step = 0; step < 17; ++step) {
        blocks.Cover(seq.block_table, seq.num_cached_tokens + seq.num_new_tokens, 16);
        ForwardBatch batch;
        batch.tokens = next;
        batch.seqs = {seq};
        std::vector<float> a, b;
        ASSERT_TRUE((*gptq)->Forward(batch, a).ok());
        ASSERT_TRUE((*dequant)->Forward(batch, b).ok());
        ASSERT_EQ(a.size(), static_cast<size_t>(vocab));
        // The GPTQ decode sums x * q per group and scales once, the fp32 twin x * w: 1e-4, the
        // CPU engine's bound against transformers.
        EXPECT_LE(RelErr(a, b), 1e-4) << "bits " << spec.bits << " step " << step;
        const int32_t ta = static_cast<int32_t>(std::max_element(a.begin(), a.end()) - a.begin());
        const int32_t tb = static_cast<int32_t>(std::max_element(b.begin(), b.end()) - b.begin());
        ASSERT_EQ(ta, tb) << "bits " << spec.bits << " step " << step;
        seq.num_cached_tokens += seq.num_new_tokens;
        seq.num_new_tokens = 1;
        next = {ta};
      }
    }
  }
}

// Shards may split a layer's tensors: here every qweight is in the second shard, whose only
// user after load is the packed weights read in place (regression: the weights held the
// scales' shard alive instead, and read unmapped memory once the store was gone).
TEST_F(GptqModelTest, QweightInAnotherShardStaysMapped) {
  WriteModels({4, 32, false, false});
  const fs::path gptq = dir_ / "gptq";
  {
    auto whole = SafetensorsFile::Open(gptq / "model.safetensors");
    ASSERT_TRUE(whole.ok());
    testing::SafetensorsWriter rest, packed;
    nlohmann::json map = nlohmann::json::object();
    for (const SafeTensor& t : (*whole)->tensors()) {
      const bool q = t.name.ends_with(".qweight");
      (q ? packed : rest).Add(t.name, std::string(StDTypeName(t.dtype)).c_str(), t.shape, t.data,
                              t.bytes);
      map[t.name] = q ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    }
    rest.Write(gptq / "model-00001-of-00002.safetensors");
    packed.Write(gptq / "model-00002-of-00002.safetensors");
    std::ofstream(gptq / "model.safetensors.index.json")
        << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump();
  }
  fs::remove(gptq / "model.safetensors");
  auto sharded = Open(gptq);
  ASSERT_TRUE(sharded.ok()) << sharded.status().ToString();
  auto dequant = Open(dir_ / "dequant");
  ASSERT_TRUE(dequant.ok());
  const auto ref = LoadReference("reference_qwen2.json");
  const auto prompt = ref["cases"][0]["prompt"].get<std::vector<int32_t>>();
  BlockPool blocks(64, 1);
  SequenceStep seq;
  seq.num_new_tokens = static_cast<int32_t>(prompt.size());
  seq.needs_logits = true;
  blocks.Cover(seq.block_table, seq.num_new_tokens, 16);
  ForwardBatch batch;
  batch.tokens = prompt;
  batch.seqs = {seq};
  std::vector<float> a, b;
  ASSERT_TRUE((*sharded)->Forward(batch, a).ok());
  ASSERT_TRUE((*dequant)->Forward(batch, b).ok());
  EXPECT_LE(RelErr(a, b), 1e-4);
}

TEST_F(GptqModelTest, MissingTensorIsALoadErrorNamingIt) {
  WriteModels({4, 32, false, false}, "model.layers.0.mlp.down_proj.qweight");
  auto model = Open(dir_ / "gptq");
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("'model.layers.0.mlp.down_proj.qweight' is missing"),
            std::string::npos)
      << model.status().ToString();
}

}  // namespace
}  // namespace sluice::llm

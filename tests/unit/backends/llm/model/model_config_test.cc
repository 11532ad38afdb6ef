// config.json / generation_config.json parsing: both transformers spellings, llama3 rope
// scaling, and clear errors for what is not supported.

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "backends/llm/model/hf_config.h"

namespace sluice::llm {
namespace {

nlohmann::json Qwen2Json() {
  return nlohmann::json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 1000, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 512, "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "use_sliding_window": false, "sliding_window": 128, "max_window_layers": 1,
    "hidden_act": "silu", "eos_token_id": 7, "bos_token_id": 5})");
}

nlohmann::json LlamaJson() {
  return nlohmann::json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 512, "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 256,
    "rms_norm_eps": 1e-5, "attention_bias": true, "mlp_bias": true, "dtype": "float32",
    "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
      "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}})");
}

TEST(HfConfigTest, Qwen2) {
  auto c = ParseHfModelConfig(Qwen2Json());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->architecture, Architecture::kQwen2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_TRUE(c->qkv_bias);
  EXPECT_FALSE(c->o_bias);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope_theta, 1e6);
  EXPECT_EQ(c->rope_scaling, RopeScaling::kNone);
  EXPECT_EQ(c->torch_dtype, "bfloat16");
  auto inv = c->RopeInvFreq();
  ASSERT_EQ(inv.size(), 8u);
  EXPECT_DOUBLE_EQ(inv[0], 1.0);
  EXPECT_DOUBLE_EQ(inv[3], std::pow(1e6, -6.0 / 16));
}

TEST(HfConfigTest, LlamaWithLlama3RopeScaling) {
  auto c = ParseHfModelConfig(LlamaJson());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->architecture, Architecture::kLlama);
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_TRUE(c->qkv_bias && c->o_bias && c->mlp_bias);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c->rope_theta, 500000.0);
  // The three regimes of llama3 scaling: wavelengths < 32/4 unchanged, > 32/1 divided by
  // the factor, in between interpolated.
  auto inv = c->RopeInvFreq();
  int unchanged = 0, scaled = 0, smoothed = 0;
  for (size_t i = 0; i < inv.size(); ++i) {
    const double base = std::pow(500000.0, -2.0 * i / 32);
    const double wavelen = 2 * std::numbers::pi / base;
    if (wavelen < 8) {
      EXPECT_DOUBLE_EQ(inv[i], base);
      ++unchanged;
    } else if (wavelen > 32) {
      EXPECT_DOUBLE_EQ(inv[i], base / 8);
      ++scaled;
    } else {
      const double s = (32 / wavelen - 1) / 3;
      EXPECT_NEAR(inv[i], (1 - s) * base / 8 + s * base, 1e-15);
      ++smoothed;
    }
  }
  EXPECT_GT(unchanged, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);

  // transformers 4 spelling.
  auto j = LlamaJson();
  j.erase("rope_parameters");
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 32}};
  auto c4 = ParseHfModelConfig(j);
  ASSERT_TRUE(c4.ok()) << c4.status().ToString();
  EXPECT_EQ(c4->RopeInvFreq(), inv);
}

TEST(HfConfigTest, Errors) {
  auto expect_error = [](nlohmann::json j, StatusCode code, const std::string& needle) {
    auto c = ParseHfModelConfig(j);
    ASSERT_FALSE(c.ok()) << needle;
    EXPECT_EQ(c.status().code(), code) << c.status().ToString();
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().message();
  };
  auto j = Qwen2Json();
  j["architectures"] = {"MixtralForCausalLM"};
  expect_error(j, StatusCode::kUnsupported, "architecture 'MixtralForCausalLM'");
  j = Qwen2Json();
  j.erase("architectures");
  expect_error(j, StatusCode::kInvalidArgument, "architectures");
  j = Qwen2Json();
  j["use_sliding_window"] = true;
  expect_error(j, StatusCode::kUnsupported, "sliding");
  j["sliding_window"] = 4096;  // longer than the context: no effect, accepted
  EXPECT_TRUE(ParseHfModelConfig(j).ok());
  j = Qwen2Json();
  j["num_key_value_heads"] = 3;
  expect_error(j, StatusCode::kInvalidArgument, "num_key_value_heads");
  j = Qwen2Json();
  j["hidden_size"] = -1;
  expect_error(j, StatusCode::kInvalidArgument, "'hidden_size'");
  j = Qwen2Json();
  j["vocab_size"] = "big";
  expect_error(j, StatusCode::kInvalidArgument, "'vocab_size'");
  j = Qwen2Json();
  j["hidden_act"] = "gelu";
  expect_error(j, StatusCode::kUnsupported, "gelu");
  j = Qwen2Json();
  j["torch_dtype"] = "int8";
  expect_error(j, StatusCode::kUnsupported, "int8");
  j = LlamaJson();
  j["rope_parameters"]["rope_type"] = "yarn";
  expect_error(j, StatusCode::kUnsupported, "yarn");
  j = LlamaJson();
  j["rope_parameters"].erase("factor");
  expect_error(j, StatusCode::kInvalidArgument, "'factor'");
  j = Qwen2Json();
  j["rms_norm_eps"] = nullptr;  // null means default
  EXPECT_TRUE(ParseHfModelConfig(j).ok());
  j = Qwen2Json();
  j["hidden_size"] = 66;  // no head_dim: hidden_size / heads must be whole
  expect_error(j, StatusCode::kInvalidArgument,
               "hidden_size is not a multiple of num_attention_heads");
  j = LlamaJson();
  j["head_dim"] = 33;
  expect_error(j, StatusCode::kInvalidArgument, "head_dim must be even");
  j = LlamaJson();
  j["dtype"] = "float8";  // the newer spelling of torch_dtype
  expect_error(j, StatusCode::kUnsupported, "dtype 'float8' is not supported");
  j = Qwen2Json();
  j["max_position_embeddings"] = 0;
  expect_error(j, StatusCode::kInvalidArgument, "'max_position_embeddings' = 0 outside");
  j = LlamaJson();
  j["attention_bias"] = "yes";
  expect_error(j, StatusCode::kInvalidArgument, "'attention_bias'");
  j = LlamaJson();
  j.erase("attention_bias");
  j.erase("mlp_bias");
  auto plain = ParseHfModelConfig(j);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_FALSE(plain->qkv_bias || plain->o_bias || plain->mlp_bias);
  EXPECT_EQ(plain->torch_dtype, "float32");
}

TEST(GenerationConfigTest, EosIntOrList) {
  auto g = ParseGenerationConfig(
      nlohmann::json::parse(
          R"({"eos_token_id": [3, 4], "bos_token_id": 1, "temperature": 0.7, "top_p": 0.8,
          "top_k": 20, "repetition_penalty": 1.05, "do_sample": true})"),
      Qwen2Json());
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(g->bos_token_id, 1);
  EXPECT_EQ(g->temperature, 0.7);
  EXPECT_EQ(g->top_k, 20);
  EXPECT_EQ(g->do_sample, true);
  EXPECT_FALSE(g->min_p.has_value());

  // Missing in generation_config.json: taken from config.json.
  auto g2 = ParseGenerationConfig(nlohmann::json::object(), Qwen2Json());
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(g2->eos_token_ids, (std::vector<int32_t>{7}));
  EXPECT_EQ(g2->bos_token_id, 5);

  auto bad =
      ParseGenerationConfig(nlohmann::json::parse(R"({"eos_token_id": [3, "x"]})"), Qwen2Json());
  EXPECT_FALSE(bad.ok());
  bad = ParseGenerationConfig(nlohmann::json::parse(R"({"top_p": 2})"), Qwen2Json());
  EXPECT_FALSE(bad.ok());
}

}  // namespace
}  // namespace sluice::llm

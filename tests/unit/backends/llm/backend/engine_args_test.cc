// model.json engine arguments (backends/llm/backend/engine_args.h): what Sluice honours,
// what it refuses (issue 20: kv_cache_dtype fp8 was given bf16, enable_lora, swap_space,
// pipeline_parallel_size, trust_remote_code were ignored without a word).

#include "backends/llm/backend/engine_args.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;

Result<EngineArgs> Parse(const std::string& extra) {
  return ParseEngineArgs(R"({"model": "m")" + std::string(extra.empty() ? "" : ", ") + extra + "}");
}

void ExpectRefused(const std::string& extra, const std::string& name) {
  auto r = Parse(extra);
  ASSERT_FALSE(r.ok()) << extra;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << extra;
  EXPECT_NE(r.status().message().find("'" + name + "'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("not supported"), std::string::npos) << r.status().message();
}

TEST(EngineArgsTest, ArgumentsSluiceCannotHonourAreRefusedAtNonDefaultValues) {
  ExpectRefused(R"("kv_cache_dtype": "fp8")", "kv_cache_dtype");
  ExpectRefused(R"("kv_cache_dtype": "fp8_e5m2")", "kv_cache_dtype");
  ExpectRefused(R"("enable_lora": true)", "enable_lora");
  ExpectRefused(R"("enable_lora": "true")", "enable_lora");
  ExpectRefused(R"("swap_space": 16)", "swap_space");
  ExpectRefused(R"("pipeline_parallel_size": 2)", "pipeline_parallel_size");
  ExpectRefused(R"("trust_remote_code": true)", "trust_remote_code");
  ExpectRefused(R"("max_logprobs": 50)", "max_logprobs");
  ExpectRefused(R"("revision": "main")", "revision");
  ExpectRefused(R"("load_format": "pt")", "load_format");
  ExpectRefused(R"("tokenizer_mode": "mistral")", "tokenizer_mode");
}

TEST(EngineArgsTest, TheirDefaultsAreAccepted) {
  for (const char* extra :
       {R"("kv_cache_dtype": "auto")", R"("enable_lora": false)", R"("enable_lora": "false")", R"("swap_space": 4)",
        R"("swap_space": 0)", R"("swap_space": 4.0)", R"("pipeline_parallel_size": 1)", R"("pipeline_parallel_size": "1")",
        R"("trust_remote_code": false)", R"("max_logprobs": 20)", R"("revision": null)", R"("load_format": "auto")",
        R"("load_format": "safetensors")", R"("tokenizer_mode": "auto")", R"("kv_cache_dtype": null)"}) {
    auto r = Parse(extra);
    EXPECT_TRUE(r.ok()) << extra << ": " << r.status().message();
    if (r.ok()) {
      EXPECT_TRUE(r->unused.empty()) << extra;
    }
  }
}

TEST(EngineArgsTest, ArgumentsWithoutEffectAreNamedNotRefused) {
  auto r = Parse(R"("disable_log_requests": true, "download_dir": "/x", "max_seq_len_to_capture": 8192)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->unused.size(), 3u);
}

TEST(EngineArgsTest, UnknownArgumentsAreRefused) {
  auto r = Parse(R"("no_such_argument": 1)");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'no_such_argument'"), std::string::npos);
}

TEST(EngineArgsTest, PrefillCostContextIsOptionalAndBounded) {
  auto unset = Parse("");
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->prefill_cost_context.has_value());  // derived from the model's shape
  auto off = Parse(R"("prefill_cost_context": 0)");
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_EQ(off->prefill_cost_context, 0);
  auto set = Parse(R"("prefill_cost_context": 12000)");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->prefill_cost_context, 12000);
  for (const char* bad : {R"("prefill_cost_context": -1)", R"("prefill_cost_context": "x")",
                          R"("prefill_cost_context": 1.5)"}) {
    auto r = Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("prefill_cost_context"), std::string::npos) << r.status().message();
  }
}

TEST(EngineArgsTest, DecodeStepBudgetIsBounded) {
  auto unset = Parse("");
  ASSERT_TRUE(unset.ok());
  EXPECT_EQ(unset->max_num_batched_tokens_with_decodes, 0);  // max_num_batched_tokens'
  auto set =
      Parse(R"("max_num_batched_tokens": 16384, "max_num_batched_tokens_with_decodes": 4096)");
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_EQ(set->max_num_batched_tokens, 16384);
  EXPECT_EQ(set->max_num_batched_tokens_with_decodes, 4096);
  for (const char* bad : {R"("max_num_batched_tokens_with_decodes": -1)",
                          R"("max_num_batched_tokens_with_decodes": "x")",
                          R"("max_num_batched_tokens_with_decodes": 2097152)"}) {
    auto r = Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("max_num_batched_tokens_with_decodes"), std::string::npos)
        << r.status().message();
  }
}

TEST(EngineArgsTest, ServedModelNameIsAStringOrAList) {
  auto one = Parse(R"("served_model_name": "qwen")");
  ASSERT_TRUE(one.ok()) << one.status().message();
  EXPECT_EQ(one->served_model_names, std::vector<std::string>{"qwen"});
  auto two = Parse(R"("served_model_name": ["a", "b"])");
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->served_model_names, (std::vector<std::string>{"a", "b"}));
  auto none = Parse(R"("served_model_name": null)");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->served_model_names.empty());
  for (const char* bad : {R"("served_model_name": "")", R"("served_model_name": [])", R"("served_model_name": [1])",
                          R"("served_model_name": 3)"}) {
    auto r = Parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("served_model_name"), std::string::npos);
  }
}

TEST(EngineArgsTest, TokenizerFolderResolvesInsideTheModelDirectory) {
  const fs::path root = fs::temp_directory_path() / ("sluice_engine_args_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "m" / "1" / "weights");
  fs::create_directories(root / "m" / "tok");
  fs::create_directories(root / "elsewhere");
  auto args = Parse(R"("tokenizer": "../tok")");
  ASSERT_TRUE(args.ok()) << args.status().message();
  auto folder = ResolveModelFolder(EngineArgs{.model = "weights"}, root / "m", root / "m" / "1");
  ASSERT_TRUE(folder.ok()) << folder.status().message();
  auto tok = ResolveTokenizerFolder(*args, root / "m", root / "m" / "1", *folder);
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  EXPECT_EQ(*tok, fs::weakly_canonical(root / "m" / "tok"));
  // Unset: the model's folder.
  auto same = ResolveTokenizerFolder(EngineArgs{.model = "weights"}, root / "m", root / "m" / "1", *folder);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, *folder);
  // Outside the model's directory, or missing: refused, naming the argument.
  auto outside = Parse(R"("tokenizer": "../../elsewhere")");
  ASSERT_TRUE(outside.ok());
  auto escaped = ResolveTokenizerFolder(*outside, root / "m", root / "m" / "1", *folder);
  ASSERT_FALSE(escaped.ok());
  EXPECT_NE(escaped.status().message().find("'tokenizer'"), std::string::npos);
  auto missing = Parse(R"("tokenizer": "nope")");
  ASSERT_TRUE(missing.ok());
  auto absent = ResolveTokenizerFolder(*missing, root / "m", root / "m" / "1", *folder);
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.status().message().find("'tokenizer'"), std::string::npos);
  fs::remove_all(root);
}

}  // namespace
}  // namespace sluice::llm

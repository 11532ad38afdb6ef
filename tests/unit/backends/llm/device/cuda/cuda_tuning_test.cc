// The CUDA device's tuning knobs (device/cuda/cuda_tuning.h), parsed from a fake
// environment: no GPU and no CUDA needed.

#include "backends/llm/device/cuda/cuda_tuning.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/status.h"

namespace sluice::llm::cuda {
namespace {

Result<CudaTuning> Parse(const std::map<std::string, std::string>& vars) {
  return ParseCudaTuning([&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(CudaTuningTest, EmptyEnvironmentGivesTheDefaults) {
  Result<CudaTuning> t = Parse({});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, CudaTuning{});
  EXPECT_TRUE(t->small_batch_gemv);
  EXPECT_TRUE(t->fuse);
  EXPECT_TRUE(t->partials_norm);
  EXPECT_EQ(t->partials_max_splits, 4);
  EXPECT_TRUE(t->gemv_pairs);
  EXPECT_TRUE(t->gemv_split);
  EXPECT_EQ(t->gemv_slice, 1024);
  EXPECT_TRUE(t->prefill_tensor_cores);
  EXPECT_EQ(t->prefill_warps, 4);
  EXPECT_EQ(t->prefill_mtiles, 2);
  EXPECT_EQ(t->prefill_wgmma, 4);
  EXPECT_TRUE(t->gptq_mma);
  EXPECT_TRUE(t->gptq_load_order);
  EXPECT_TRUE(t->gptq_swiglu);
  EXPECT_EQ(t->gptq_mma_max_rows, 32);
  EXPECT_EQ(t->gptq_gemm_max_rows, 64);
  EXPECT_EQ(t->gptq_pdl_max_rows, 0);
  EXPECT_TRUE(t->gptq_gemm90);
  EXPECT_EQ(t->gptq_gemm90_min_rows, 17);  // the small-batch kernel to 16 rows where it runs
  EXPECT_EQ(t->gptq_gemm90_max_rows, 2048);
  EXPECT_EQ(t->gptq_gemm90_tile_rows, 0);
  EXPECT_EQ(t->gptq_gemm90_shapes, 2);
  EXPECT_EQ(t->gptq_gemm90_tile_cols, 0);
  EXPECT_EQ(t->gptq_gemm90_splits, 0);
  EXPECT_EQ(t->gptq_gemm90_tma, 2);  // the producing warpgroup where the block allows it
  EXPECT_TRUE(t->gptq_gemm90_tail);
  EXPECT_TRUE(t->gptq_gemm90_cluster);
  EXPECT_TRUE(t->gptq_chunk);
  EXPECT_FALSE(t->gptq_dequant_ahead);
  EXPECT_TRUE(t->gptq_dequant_rows);
  EXPECT_EQ(t->matmul_exact_rows, 1024);
  EXPECT_TRUE(t->dependent_launch);
  EXPECT_FALSE(t->profile);
  EXPECT_TRUE(t->token_masks);
  EXPECT_TRUE(t->decode_pipeline);
  EXPECT_TRUE(t->decode_fused_combine);
  EXPECT_TRUE(t->decode_fused_rope);
}

TEST(CudaTuningTest, EmptyValueTakesTheDefault) {
  Result<CudaTuning> t = Parse({{"SLUICE_CUDA_GEMV", ""}, {"SLUICE_CUDA_GEMV_SLICE", ""}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, CudaTuning{});
}

// Each switch's two values: one is the default, the other changes the tuning.
TEST(CudaTuningTest, EverySwitchHasTwoValues) {
  for (const char* name : {"SLUICE_CUDA_GEMV",
                           "SLUICE_CUDA_FUSE",
                           "SLUICE_CUDA_PARTIALS_NORM",
                           "SLUICE_CUDA_GEMV_PAIRS",
                           "SLUICE_CUDA_GEMV_SPLIT",
                           "SLUICE_CUDA_PREFILL_TC",
                           "SLUICE_CUDA_GPTQ_MMA",
                           "SLUICE_CUDA_GPTQ_LOAD_ORDER",
                           "SLUICE_CUDA_GPTQ_SWIGLU",
                           "SLUICE_CUDA_GPTQ_GEMM90",
                           "SLUICE_CUDA_GPTQ_CHUNK",
                           "SLUICE_CUDA_GPTQ_DEQUANT_ROWS",
                           "SLUICE_CUDA_PDL",
                           "SLUICE_CUDA_PROFILE",
                           "SLUICE_CUDA_TOKEN_MASKS",
                           "SLUICE_CUDA_DECODE_PIPELINE",
                           "SLUICE_CUDA_DECODE_LATE_PDL",
                           "SLUICE_CUDA_DECODE_EARLY_LAUNCH",
                           "SLUICE_CUDA_DECODE_FUSED_COMBINE",
                           "SLUICE_CUDA_DECODE_FUSED_ROPE",
                           "SLUICE_CUDA_GPTQ_GEMM90_TAIL",
                           "SLUICE_CUDA_GPTQ_GEMM90_CLUSTER",
                           "SLUICE_CUDA_GPTQ_DEQUANT_AHEAD"}) {
    Result<CudaTuning> off = Parse({{name, "0"}});
    Result<CudaTuning> on = Parse({{name, "1"}});
    ASSERT_TRUE(off.ok() && on.ok()) << name;
    EXPECT_NE(*off, *on) << name << " changed nothing";
    EXPECT_TRUE(*off == CudaTuning{} || *on == CudaTuning{}) << name << " has no default";
  }
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GEMV", "0"}})->small_batch_gemv);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_PDL", "0"}})->dependent_launch);
  EXPECT_TRUE(Parse({{"SLUICE_CUDA_PROFILE", "1"}})->profile);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_DECODE_PIPELINE", "0"}})->decode_pipeline);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_DECODE_FUSED_COMBINE", "0"}})->decode_fused_combine);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_DECODE_FUSED_ROPE", "0"}})->decode_fused_rope);
}

TEST(CudaTuningTest, NumbersInRange) {
  Result<CudaTuning> t = Parse({{"SLUICE_CUDA_PARTIALS_MAX_SPLITS", "2"},
                                {"SLUICE_CUDA_GEMV_SLICE", "2048"},
                                {"SLUICE_CUDA_PREFILL_WARPS", "8"},
                                {"SLUICE_CUDA_GPTQ_MMA_MAX_ROWS", "256"},
                                {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "1024"},
                                {"SLUICE_CUDA_GPTQ_PDL_MAX_ROWS", "16"},
                                {"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", "17"},
                                {"SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS", "384"},
                                {"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", "64"},
                                {"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", "192"},
                                {"SLUICE_CUDA_GPTQ_GEMM90_SPLITS", "3"}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->partials_max_splits, 2);
  EXPECT_EQ(t->gemv_slice, 2048);
  EXPECT_EQ(t->prefill_warps, 8);
  EXPECT_EQ(t->gptq_mma_max_rows, 256);
  EXPECT_EQ(t->gptq_gemm_max_rows, 1024);
  EXPECT_EQ(t->gptq_pdl_max_rows, 16);
  EXPECT_EQ(t->gptq_gemm90_min_rows, 17);
  EXPECT_EQ(t->gptq_gemm90_max_rows, 384);
  EXPECT_EQ(t->gptq_gemm90_tile_rows, 64);
  EXPECT_EQ(t->gptq_gemm90_tile_cols, 192);
  EXPECT_EQ(t->gptq_gemm90_splits, 3);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_SHAPES", "1"}})->gptq_gemm90_shapes, 1);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_SHAPES", "2"}})->gptq_gemm90_shapes, 2);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_SHAPES", "3"}}).ok());
  EXPECT_EQ(Parse({})->gptq_mma_tiles, 0);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_MMA_TILES", "1"}})->gptq_mma_tiles, 1);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_MMA_TILES", "2"}})->gptq_mma_tiles, 2);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GPTQ_MMA_TILES", "3"}}).ok());
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_TMA", "0"}})->gptq_gemm90_tma, 0);  // cp.async
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_TMA", "2"}})->gptq_gemm90_tma, 2);  // producer
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_TMA", "3"}}).ok());
  EXPECT_EQ(Parse({{"SLUICE_CUDA_MATMUL_EXACT_ROWS", "0"}})->matmul_exact_rows, 0);  // buckets
  EXPECT_EQ(Parse({{"SLUICE_CUDA_MATMUL_EXACT_ROWS", "1800"}})->matmul_exact_rows, 1800);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_MATMUL_EXACT_ROWS", "-1"}}).ok());
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", "1"}})->gptq_gemm90_min_rows, 1);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", "0"}}).ok());  // rows start at 1
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", "1025"}}).ok());
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_MATMUL_EXACT_ROWS", "1048577"}}).ok());
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "0"}})->gptq_gemm_max_rows, 0);  // off
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "0"}})->prefill_wgmma, 0);            // mma.sync
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "1"}})->prefill_wgmma, 1);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "3"}})->prefill_wgmma, 3);  // warp-specialized
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "4"}})->prefill_wgmma, 4);
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "5"}})->prefill_wgmma, 5);
  EXPECT_FALSE(Parse({{"SLUICE_CUDA_PREFILL_WGMMA", "6"}}).ok());
  // The ends of each range.
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"SLUICE_CUDA_PARTIALS_MAX_SPLITS", "0"},
                                          {"SLUICE_CUDA_GEMV_SLICE", "256"},
                                          {"SLUICE_CUDA_PREFILL_WARPS", "4"},
                                          {"SLUICE_CUDA_GPTQ_MMA_MAX_ROWS", "0"},
                                          {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "4096"},
                                          {"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", "1024"},
                                          {"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", "256"},
                                          {"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", "0"},
                                          {"SLUICE_CUDA_GPTQ_GEMM90_SPLITS", "8"}}) {
    EXPECT_TRUE(Parse({{name, value}}).ok()) << name << "=" << value;
  }
}

// Values atoi read as 0 or as a prefix, or that the code mapped silently to the default.
TEST(CudaTuningTest, InvalidValueIsAnErrorNamingTheVariableAndTheValue) {
  const std::pair<std::string, std::string> cases[] = {
      {"SLUICE_CUDA_GEMV", "off"},
      {"SLUICE_CUDA_FUSE", "false"},
      {"SLUICE_CUDA_PROFILE", "yes"},
      {"SLUICE_CUDA_PDL", " 0"},
      {"SLUICE_CUDA_GPTQ_MMA", "2"},
      {"SLUICE_CUDA_PARTIALS_MAX_SPLITS", "two"},
      {"SLUICE_CUDA_PARTIALS_MAX_SPLITS", "5"},
      {"SLUICE_CUDA_PARTIALS_MAX_SPLITS", "-1"},
      {"SLUICE_CUDA_GEMV_SLICE", "128"},
      {"SLUICE_CUDA_GEMV_SLICE", "1024x"},
      {"SLUICE_CUDA_GEMV_SLICE", "99999999999999999999"},
      {"SLUICE_CUDA_PREFILL_WARPS", "6"},
      {"SLUICE_CUDA_PREFILL_WARPS", "16"},
      {"SLUICE_CUDA_GPTQ_MMA_MAX_ROWS", "+64"},
      {"SLUICE_CUDA_GPTQ_MMA_MAX_ROWS", "4097"},
      {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "4097"},
      {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "-1"},
      {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", "256 "},
      {"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", "96"},
      {"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", "320"},
      {"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", "64"},  // inside the stepped range, not a shape
      {"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", "256"},
      {"SLUICE_CUDA_GPTQ_GEMM90_SPLITS", "9"},
      {"SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS", "5000"},
      {"SLUICE_CUDA_GPTQ_PDL_MAX_ROWS", "4097"},
      {"SLUICE_CUDA_GPTQ_PDL_MAX_ROWS", "-1"},
  };
  for (const auto& [name, value] : cases) {
    Result<CudaTuning> t = Parse({{name, value}});
    ASSERT_FALSE(t.ok()) << name << "=" << value << " was accepted";
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(t.status().message().find(name + "='" + value + "'"), std::string::npos)
        << t.status().message();
  }
}

TEST(CudaTuningTest, ErrorSaysWhatIsExpected) {
  EXPECT_EQ(Parse({{"SLUICE_CUDA_PREFILL_WARPS", "6"}}).status().message(),
            "SLUICE_CUDA_PREFILL_WARPS='6': expected 4 or 8");
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GEMV_SLICE", "1"}}).status().message(),
            "SLUICE_CUDA_GEMV_SLICE='1': expected an integer from 256 to 1048576");
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", "96"}}).status().message(),
            "SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS='96': expected 0, 64, 128, 192 or 256");
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", "64"}}).status().message(),
            "SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS='64': expected 0, 128 or 192");
  EXPECT_EQ(Parse({{"SLUICE_CUDA_GPTQ_GEMM90_SPLITS", "9"}}).status().message(),
            "SLUICE_CUDA_GPTQ_GEMM90_SPLITS='9': expected an integer from 0 to 8");
  EXPECT_EQ(Parse({{"SLUICE_CUDA_FUSE", "no"}}).status().message(),
            "SLUICE_CUDA_FUSE='no': expected 0 or 1");
}

// Variables outside the table are not the tuning's business.
TEST(CudaTuningTest, UnknownVariablesAreIgnored) {
  Result<CudaTuning> t = Parse({{"SLUICE_CUDA_NOT_A_KNOB", "garbage"}});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, CudaTuning{});
}

}  // namespace
}  // namespace sluice::llm::cuda

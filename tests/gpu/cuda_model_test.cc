// The decoder model on the CUDA device (bf16) against transformers, on the trained GPU
// fixtures (scripts/make_gpu_test_models.py: confident enough that bf16 greedy runs are
// stable): prompt logits through chunked prefill over scattered KV blocks within 1e-2
// relative error (L2 norm of the row) of the float64 reference, or three times transformers'
// own bf16 error on the row where that is larger (the error against transformers' bf16
// logits on the GPU is printed), and 32 greedy tokens (sampled on the device, decode
// steps replayed from CUDA graphs, and again eagerly) equal to transformers' bf16 greedy run.
// Also: the fp32 / fp16 / bf16 copies of one model give bit-equal logits (the weights are
// bf16-exact, so the conversion on upload must be exact), a batch of padded decodes equals
// each sequence alone, the KV cache is sized from the GPU's memory, and without a GPU the
// load fails with a clear error.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/model/decoder_model.h"
#include "backends/llm/model/model_loader.h"
#include "gpu/gpu_test_util.h"
#include "support/block_pool.h"
#include "support/model_fixtures.h"

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;

using testing::kFixtures;
using testing::LoadReference;
using testing::ModelCase;

std::unique_ptr<DecoderModel> OpenCuda(const fs::path& folder, bool eager = false,
                                       int32_t num_blocks = 64) {
  ModelLoadOptions options;
  options.device = DeviceKind::kCuda;
  options.num_blocks = num_blocks;
  options.block_size = 16;
  options.max_num_seqs = 8;
  options.max_num_batched_tokens = 256;
  options.enforce_eager = eager;
  auto model = LoadModel(folder, options);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

// ||got - ref|| / ||ref|| over one row of logits (bf16 compute lands between 1e-3 and 1e-2).
double RowRelErr(const float* got, const nlohmann::json& ref) {
  double diff = 0, norm = 1e-300;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i].get<double>();
    diff += (got[i] - r) * (got[i] - r);
    norm += r * r;
  }
  return std::sqrt(diff / norm);
}

using testing::BlockPool;

RowSampling Greedy() {
  RowSampling r;
  r.temperature = 0;
  return r;
}

// Greedy continuation of each prompt, all sequences decoding in one batch per step
// (prefill first, one sequence per step). Tokens sampled on the device.
std::vector<std::vector<int32_t>> GreedyBatch(DecoderModel& model,
                                              const std::vector<std::vector<int32_t>>& prompts,
                                              int32_t steps, uint32_t block_seed) {
  BlockPool blocks(model.num_blocks(), block_seed);
  std::vector<SequenceStep> seqs(prompts.size());
  std::vector<std::vector<int32_t>> out(prompts.size());
  std::vector<int32_t> last(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    ForwardBatch batch;
    batch.tokens = prompts[i];
    seqs[i].num_new_tokens = static_cast<int32_t>(prompts[i].size());
    seqs[i].needs_logits = true;
    blocks.Cover(seqs[i].block_table, seqs[i].num_new_tokens, model.block_size());
    batch.seqs = {seqs[i]};
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    const std::vector<RowSampling> rows = {Greedy()};
    Status st = model.ForwardSample(batch, rows, tokens, logprobs);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return out;
    last[i] = tokens[0];
    out[i].push_back(tokens[0]);
    seqs[i].num_cached_tokens = seqs[i].num_new_tokens;
  }
  for (int32_t step = 1; step < steps; ++step) {
    ForwardBatch batch;
    for (size_t i = 0; i < prompts.size(); ++i) {
      seqs[i].num_new_tokens = 1;
      blocks.Cover(seqs[i].block_table, seqs[i].num_cached_tokens + 1, model.block_size());
      batch.tokens.push_back(last[i]);
      batch.seqs.push_back(seqs[i]);
    }
    std::vector<int32_t> tokens;
    std::vector<float> logprobs;
    const std::vector<RowSampling> rows(prompts.size(), Greedy());
    Status st = model.ForwardSample(batch, rows, tokens, logprobs);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return out;
    for (size_t i = 0; i < prompts.size(); ++i) {
      last[i] = tokens[i];
      out[i].push_back(tokens[i]);
      seqs[i].num_cached_tokens += 1;
    }
  }
  return out;
}

class CudaModelTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    if (!cuda::testing::HaveGpu()) GTEST_SKIP() << "no usable CUDA GPU on this machine";
  }
};

// Runs each prompt as chunks ending at its reference positions; one logits row per position.
std::vector<std::vector<float>> ChunkedPrefillLogits(DecoderModel& model,
                                                     const nlohmann::json& ref) {
  std::vector<std::vector<float>> rows;
  BlockPool blocks(model.num_blocks(), 7);
  for (const auto& c : ref["cases"]) {
    const auto prompt = c["prompt"].get<std::vector<int32_t>>();
    const auto positions = c["logit_positions"].get<std::vector<int32_t>>();
    SequenceStep seq;
    int32_t done = 0;
    for (int32_t position : positions) {
      const int32_t end = position + 1;
      ForwardBatch batch;
      batch.tokens.assign(prompt.begin() + done, prompt.begin() + end);
      seq.num_cached_tokens = done;
      seq.num_new_tokens = end - done;
      seq.needs_logits = true;
      blocks.Cover(seq.block_table, end, model.block_size());
      batch.seqs = {seq};
      std::vector<float> logits;
      Status st = model.Forward(batch, logits);
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(logits.size(), static_cast<size_t>(model.shape().vocab_size));
      rows.push_back(std::move(logits));
      done = end;
    }
  }
  return rows;
}

TEST_P(CudaModelTest, ChunkedPrefillLogitsWithinOnePercentOfTransformersBf16) {
  auto model = OpenCuda(kFixtures / GetParam().folder);
  ASSERT_NE(model, nullptr);
  const auto ref = LoadReference(GetParam().reference);
  const auto rows = ChunkedPrefillLogits(*model, ref);
  double worst_bf16 = 0, worst_f64 = 0;
  size_t k = 0;
  for (const auto& c : ref["cases"]) {
    for (size_t i = 0; i < c["logit_positions"].size(); ++i, ++k) {
      ASSERT_LT(k, rows.size());
      const double err = RowRelErr(rows[k].data(), c["bf16_logits"][i]);
      const double err_f64 = RowRelErr(rows[k].data(), c["logits"][i]);
      worst_bf16 = std::max(worst_bf16, err);
      worst_f64 = std::max(worst_f64, err_f64);
      // A bf16 forward's error on a row is rounding noise whose size depends on where it
      // rounds (bench/bf16_rounding_spread.py: 0.004 to 0.014 on llama3_gpu's worst row for
      // the same model with the softmax weights rounded or not): bounded by three times the
      // error transformers' own bf16 forward makes on the row, or 1 %, against float64.
      const auto theirs = c["bf16_logits"][i].get<std::vector<float>>();
      const double bound = std::max(1e-2, 3 * RowRelErr(theirs.data(), c["logits"][i]));
      EXPECT_LE(err_f64, bound) << "prompt of " << c["prompt"].size() << " tokens, position "
                                << c["logit_positions"][i] << " (against transformers bf16: "
                                << err << ")";
    }
  }
  std::printf(
      "[ result   ] %s: worst logits relative error %.3g vs transformers bf16 (GPU), "
      "%.3g vs float64\n",
      GetParam().folder, worst_bf16, worst_f64);
}

TEST_P(CudaModelTest, GreedyTokensEqualTransformersBf16OnTheGpu) {
  const auto ref = LoadReference(GetParam().reference);
  ASSERT_TRUE(ref.contains("bf16_cuda_greedy") && ref["bf16_cuda_greedy"].is_array());
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& c : ref["cases"]) prompts.push_back(c["prompt"].get<std::vector<int32_t>>());
  const auto expected = ref["bf16_cuda_greedy"].get<std::vector<std::vector<int32_t>>>();
  ASSERT_EQ(expected.size(), prompts.size());
  for (bool eager : {false, true}) {
    auto model = OpenCuda(kFixtures / GetParam().folder, eager);
    ASSERT_NE(model, nullptr);
    if (!eager) {
      EXPECT_GT(model->kv_cache_sizing().graphs_captured, 0);
    }
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto got = GreedyBatch(*model, {prompts[i]}, 32, 11 + static_cast<uint32_t>(i));
      EXPECT_EQ(got[0], expected[i]) << "prompt " << i << (eager ? " (eager)" : " (graphs)");
    }
  }
}

TEST_P(CudaModelTest, PaddedDecodeBatchEqualsEachSequenceAlone) {
  const auto ref = LoadReference(GetParam().reference);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& c : ref["cases"]) prompts.push_back(c["prompt"].get<std::vector<int32_t>>());
  ASSERT_GE(prompts.size(), 3u);  // 3 sequences decode in the graph of bucket 4
  auto model = OpenCuda(kFixtures / GetParam().folder);
  ASSERT_NE(model, nullptr);
  const auto together = GreedyBatch(*model, prompts, 24, 5);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto alone = GreedyBatch(*model, {prompts[i]}, 24, 9);
    EXPECT_EQ(together[i], alone[0]) << "prompt " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModelTest,
                         ::testing::Values(ModelCase{"qwen2_gpu", "reference_qwen2_gpu.json"},
                                           ModelCase{"llama3_gpu", "reference_llama3_gpu.json"}));

// The random-weight fixtures hold bf16-exact weights in fp32, fp16 and bf16 files (and a
// sharded copy): uploaded as bf16, all must give the very same logits.
TEST(CudaWeightUploadTest, EveryCheckpointDtypeGivesBitEqualLogits) {
  SLUICE_REQUIRE_GPU();
  for (const auto& [folders, reference] :
       {std::pair<std::vector<const char*>, const char*>{{"qwen2_bf16", "qwen2_fp32", "qwen2_fp16"},
                                                         "reference_qwen2.json"},
        {{"llama3_bf16", "llama3_fp32"}, "reference_llama3.json"}}) {
    const auto ref = LoadReference(reference);
    std::vector<std::vector<float>> first;
    for (const char* folder : folders) {
      auto model = OpenCuda(kFixtures / folder);
      ASSERT_NE(model, nullptr) << folder;
      const auto rows = ChunkedPrefillLogits(*model, ref);
      if (first.empty()) {
        first = rows;
      } else {
        EXPECT_EQ(rows, first) << folder << " differs from " << folders[0];
      }
    }
  }
}

TEST(CudaKvCacheTest, SizedFromGpuMemoryUtilization) {
  SLUICE_REQUIRE_GPU();
  ModelLoadOptions options;
  options.device = DeviceKind::kCuda;
  options.num_blocks = 0;  // sized by gpu_memory_utilization
  options.gpu_memory_utilization = 0.5;
  options.max_num_seqs = 16;
  options.max_num_batched_tokens = 512;
  auto model = LoadModel(kFixtures / "qwen2_bf16", options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const KvCacheSizing& kv = (*model)->kv_cache_sizing();
  EXPECT_TRUE(kv.from_memory);
  EXPECT_GT(kv.num_blocks, 1000);
  const double cache = static_cast<double>(kv.num_blocks) * kv.bytes_per_block;
  const double budget = 0.5 * static_cast<double>(kv.device_total_bytes);
  EXPECT_LE(cache + static_cast<double>(kv.used_before_cache_bytes), budget + kv.bytes_per_block);
  EXPECT_GE(cache + static_cast<double>(kv.used_before_cache_bytes),
            budget - 2.0 * kv.bytes_per_block);
  std::printf("[ result   ] %d blocks of %zu bytes; %.0f MiB in use before the cache of %.0f MiB\n",
              kv.num_blocks, kv.bytes_per_block, kv.used_before_cache_bytes / 1048576.0,
              kv.device_total_bytes / 1048576.0);

  // A budget below what is already in use is refused with the numbers.
  options.gpu_memory_utilization = 1e-6;
  auto refused = LoadModel(kFixtures / "qwen2_bf16", options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("gpu_memory_utilization"), std::string::npos)
      << refused.status().ToString();
}

TEST(CudaDeviceTest, NonexistentGpuIsAClearError) {
  SLUICE_REQUIRE_GPU();
  ModelLoadOptions options;
  options.device = DeviceKind::kCuda;
  options.num_blocks = 16;
  options.gpu_id = 4096;
  auto model = LoadModel(kFixtures / "qwen2_bf16", options);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("GPU 4096 does not exist"), std::string::npos)
      << model.status().ToString();
}

// Runs on machines without a GPU (CI): asking for the CUDA device fails cleanly.
TEST(CudaDeviceTest, NoGpuIsAClearError) {
  if (cuda::testing::HaveGpu()) GTEST_SKIP() << "this machine has a GPU";
  ModelLoadOptions options;
  options.device = DeviceKind::kCuda;
  options.num_blocks = 16;
  auto model = LoadModel(kFixtures / "qwen2_bf16", options);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(model.status().message().find("no usable CUDA GPU"), std::string::npos)
      << model.status().ToString();
  std::string why;
  EXPECT_EQ(CudaGpuCount(&why), 0);
  EXPECT_FALSE(why.empty());
}

// Runs on any machine (the tuning is checked before the GPU): an invalid SLUICE_CUDA_* value
// fails the device's creation, naming the variable and the value. The environment is read
// once a process, so the check runs in a fresh one (a death test that re-executes the binary).
TEST(CudaDeviceTest, InvalidTuningValueIsALoadError) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("SLUICE_CUDA_GEMV_SLICE", "lots", 1);
        Result<std::unique_ptr<Device>> device = CreateCudaDevice({});
        if (!device.ok()) std::fprintf(stderr, "%s\n", device.status().ToString().c_str());
        std::_Exit(!device.ok() && device.status().code() == StatusCode::kInvalidArgument ? 0 : 1);
      },
      ::testing::ExitedWithCode(0),
      "SLUICE_CUDA_GEMV_SLICE='lots': expected an integer from 256 to 1048576");
}

}  // namespace
}  // namespace sluice::llm

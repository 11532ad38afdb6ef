// Tensor parallelism on the CPU device (issue 7): the layout of each rank, the weight slices,
// and the check that matters, ranks computed as threads with an in-process all-reduce
// reproduce the unsharded model's logits, through prefill and decode, for Qwen2 and Llama.

#include "backends/llm/model/tensor_parallel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <thread>
#include <vector>

#include "backends/llm/device/collective.h"
#include "backends/llm/device/cpu/cpu_device.h"
#include "backends/llm/model/decoder_model.h"
#include "support/block_pool.h"
#include "support/model_fixtures.h"

namespace sluice::llm {
namespace {

using testing::BlockPool;
using testing::kFixtures;

HfModelConfig Shape(int32_t heads, int32_t kv_heads, int32_t inter) {
  HfModelConfig c;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.intermediate_size = inter;
  c.hidden_size = 64;
  c.head_dim = 16;
  return c;
}

TEST(TensorParallelTest, LayoutSplitsHeadsAndColumns) {
  auto l = MakeTpLayout(Shape(28, 4, 18944), 1, 2);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->q_heads, 14);
  EXPECT_EQ(l->q_head_first, 14);
  EXPECT_EQ(l->kv_heads, 2);
  EXPECT_EQ(l->kv_head_first, 2);
  EXPECT_EQ(l->inter, 9472);
  EXPECT_EQ(l->inter_first, 9472);
  // Fewer kv heads than ranks: each rank keeps the kv head its q heads read (GQA 4/2, TP 4).
  for (int32_t r = 0; r < 4; ++r) {
    auto t = MakeTpLayout(Shape(4, 2, 128), r, 4);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->q_heads, 1);
    EXPECT_EQ(t->kv_heads, 1);
    EXPECT_EQ(t->kv_head_first, r / 2) << "rank " << r;
  }
}

TEST(TensorParallelTest, LayoutRefusesWhatDoesNotSplit) {
  auto heads = MakeTpLayout(Shape(28, 4, 18944), 0, 3);
  ASSERT_FALSE(heads.ok());
  EXPECT_NE(heads.status().message().find("attention heads (28)"), std::string::npos);
  auto inter = MakeTpLayout(Shape(8, 8, 100), 0, 8);
  ASSERT_FALSE(inter.ok());
  EXPECT_NE(inter.status().message().find("intermediate_size (100)"), std::string::npos);
  auto kv = MakeTpLayout(Shape(12, 3, 96), 0, 4);  // 3 kv heads over 4 ranks
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.status().message().find("kv heads (3)"), std::string::npos);
  EXPECT_FALSE(MakeTpLayout(Shape(4, 2, 128), 2, 2).ok());  // rank out of range
}

TEST(TensorParallelTest, SlicesTakeRowsInPlaceAndCopyColumns) {
  std::vector<float> m(3 * 4);
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<float>(i);  // m[r][c] = 4r + c
  WeightSource w{DType::kF32, m.data(), m.size(), nullptr};
  const WeightSource rows = SliceRows(w, 4, 1, 2);
  EXPECT_EQ(rows.host, m.data() + 4);
  EXPECT_EQ(rows.elements, 8u);
  const WeightSource cols = SliceColumns(w, 3, 4, 1, 2);
  ASSERT_EQ(cols.elements, 6u);
  ASSERT_NE(cols.keep_alive, nullptr);
  const auto* c = static_cast<const float*>(cols.host);
  EXPECT_EQ(std::vector<float>(c, c + 6), (std::vector<float>{1, 2, 5, 6, 9, 10}));
}

std::unique_ptr<DecoderModel> Open(const std::string& folder, int32_t rank, int32_t size,
                                   Collective* collective) {
  auto device = CreateCpuDevice({.threads = 1});
  EXPECT_TRUE(device.ok());
  auto model = DecoderModel::Create(kFixtures / folder, std::move(*device),
                                    {.num_blocks = 16,
                                     .block_size = 16,
                                     .tp_rank = rank,
                                     .tp_size = size,
                                     .collective = collective});
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

// Two sequences prefilled together, then decoded together (greedy) for a few steps: the
// logits of every step, in order.
std::vector<std::vector<float>> RunSteps(DecoderModel& model) {
  BlockPool blocks(16, 7);
  std::vector<std::vector<int32_t>> prompts = {{5, 17, 42, 8, 99, 3, 61, 12, 7, 30, 2},
                                               {44, 9, 1, 73, 20}};
  std::vector<SequenceStep> seqs(prompts.size());
  ForwardBatch batch;
  for (size_t s = 0; s < prompts.size(); ++s) {
    seqs[s].num_new_tokens = static_cast<int32_t>(prompts[s].size());
    seqs[s].needs_logits = true;
    blocks.Cover(seqs[s].block_table, seqs[s].num_new_tokens, 16);
    batch.tokens.insert(batch.tokens.end(), prompts[s].begin(), prompts[s].end());
  }
  batch.seqs = seqs;
  std::vector<std::vector<float>> out;
  const int32_t vocab = model.shape().vocab_size;
  for (int step = 0; step < 4; ++step) {
    std::vector<float> logits;
    Status st = model.Forward(batch, logits);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) break;
    out.push_back(logits);
    ForwardBatch next;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const float* row = logits.data() + s * vocab;
      const int32_t token = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
      seqs[s].num_cached_tokens += seqs[s].num_new_tokens;
      seqs[s].num_new_tokens = 1;
      blocks.Cover(seqs[s].block_table, seqs[s].num_cached_tokens + 1, 16);
      next.tokens.push_back(token);
    }
    next.seqs = seqs;
    batch = next;
  }
  return out;
}

struct TpCase {
  const char* folder;
  int32_t size;
};
std::ostream& operator<<(std::ostream& os, const TpCase& c) {
  return os << c.folder << "_tp" << c.size;
}

class TensorParallelModelTest : public ::testing::TestWithParam<TpCase> {};

TEST_P(TensorParallelModelTest, ShardsReproduceTheUnshardedForward) {
  const TpCase tc = GetParam();
  auto whole = Open(tc.folder, 0, 1, nullptr);
  ASSERT_NE(whole, nullptr);
  const auto want = RunSteps(*whole);
  ASSERT_EQ(want.size(), 4u);

  LocalCollectiveGroup group(tc.size);
  std::vector<std::vector<std::vector<float>>> got(tc.size);
  std::vector<std::thread> ranks;
  for (int32_t r = 0; r < tc.size; ++r) {
    ranks.emplace_back([&, r] {
      auto model = Open(tc.folder, r, tc.size, &group.rank(r));
      if (model == nullptr) return;
      EXPECT_EQ(model->config().num_heads * tc.size, whole->config().num_heads);
      got[r] = RunSteps(*model);
    });
  }
  for (std::thread& t : ranks) t.join();
  for (int32_t r = 0; r < tc.size; ++r) {
    ASSERT_EQ(got[r].size(), want.size()) << "rank " << r;
    for (size_t step = 0; step < want.size(); ++step) {
      // Every rank holds the same (all-reduced) logits, bit for bit.
      EXPECT_EQ(got[r][step], got[0][step]) << "rank " << r << " step " << step;
      double max_diff = 0, max_ref = 1e-30;
      for (size_t i = 0; i < want[step].size(); ++i) {
        max_diff = std::max(max_diff, std::abs(double{got[r][step][i]} - want[step][i]));
        max_ref = std::max(max_ref, std::abs(double{want[step][i]}));
      }
      // fp32 partial sums added in another order than one dot product: rounding only.
      EXPECT_LE(max_diff / max_ref, 1e-5) << "rank " << r << " step " << step;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TensorParallelModelTest,
                         ::testing::Values(TpCase{"qwen2_fp32", 2}, TpCase{"qwen2_fp32", 4},
                                           TpCase{"llama3_fp32", 2}, TpCase{"llama3_fp32", 4}));

TEST(TensorParallelModelTest, RankWithoutItsCollectiveIsRefused) {
  auto device = CreateCpuDevice({.threads = 1});
  ASSERT_TRUE(device.ok());
  auto model = DecoderModel::Create(kFixtures / "qwen2_fp32", std::move(*device),
                                    {.num_blocks = 16, .tp_rank = 0, .tp_size = 2});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("needs a collective"), std::string::npos);

  auto device3 = CreateCpuDevice({.threads = 1});
  LocalCollectiveGroup group(3);
  auto three = DecoderModel::Create(
      kFixtures / "qwen2_fp32", std::move(*device3),
      {.num_blocks = 16, .tp_rank = 0, .tp_size = 3, .collective = &group.rank(0)});
  ASSERT_FALSE(three.ok());
  EXPECT_NE(three.status().message().find("does not divide the attention heads (4)"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::llm

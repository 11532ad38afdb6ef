// Decode attention (kernels.h Attention over sequences of one new token; attention_decode.cu)
// against the double-precision reference of attention_test_util.h, at the lengths where the
// split of a context into partitions and of a partition into warp tiles has its edges: one
// token, around a 16-token block, 511, 4,097 and 32,768, alone and in batches of random
// lengths, at GQA ratios 1, 4, 7 and 8 and head dims 64 and 128; with the grid bound of a
// captured graph (the model's length) above the contexts, in a graph replayed with new step
// contents, and with the new token's K/V row written by the kernel just before on the stream.
// Every cache slot outside a context holds NaN, and the output is poisoned: a read past a
// context, or a row or head the kernels skip, fails the comparison.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "gpu/attention_test_util.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using namespace attention_test;  // NOLINT: the tests' shared cases and reference
using testing::CapturedGraph;
using testing::DeviceArray;
using testing::FreshRng;
using testing::ToBf16;
using testing::ToFloat;

const std::vector<int32_t> kEdgeContexts = {1, 15, 16, 17, 511, 4097, 32768};

// (q heads, kv heads, head dim): GQA 7 (Qwen2-7B), 1, 4 and 8, at head dims 128 and 64.
std::vector<AttentionShape> DecodeShapes() {
  return {kQwen7b,
          MakeShape(4, 4, 128, 2.f),
          MakeShape(16, 4, 128, 2.f),
          MakeShape(32, 4, 128),
          MakeShape(8, 8, 64, 2.f),
          MakeShape(8, 2, 64, 2.f),
          MakeShape(14, 2, 64),
          MakeShape(16, 2, 64, 2.f)};
}

std::string DescribeContexts(const Case& c) {
  std::string out = Describe(c) + ", contexts:";
  for (const Seq& s : c.seqs) out += " " + std::to_string(s.cached + s.num_new);
  return out;
}

// One sequence at each edge length, at each shape: with tight grid bounds, with a graph's
// (max_context 32,768, which adds partitions and blocks that must find no work; the split
// depends on the context, so the result is the very same), and, at 4,097, with no workspace
// (one block per kv head and head chunk streams the whole context).
TEST(DecodeAttentionTest, OneSequenceAtEachEdgeLengthAndShape) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (const AttentionShape& shape : DecodeShapes()) {
    for (int32_t context : kEdgeContexts) {
      const Case c = MakeCase(rng, shape, 16, {{context - 1, 1}});
      const std::string what = DescribeContexts(c);
      const std::vector<float> want = Reference(c);
      const std::vector<float> tight = RunAttention(c);
      ExpectMatches(c, tight, want, "tight bounds, " + what);
      const std::vector<float> loose = RunAttention(c, 1, 32768);
      ExpectMatches(c, loose, want, "max_context 32768, " + what);
      EXPECT_EQ(loose, tight) << "the bound changed the result, " << what;
      EXPECT_EQ(RunAttention(c), tight) << "two runs differ, " << what;
      if (context == 4097) {
        ExpectMatches(c, RunAttention(c, 1, 32768, /*workspace_bytes=*/0), want,
                      "no workspace, " + what);
      }
    }
  }
}

// Batches of the edge lengths and random ones (and a graph bucket's padding sequence), in
// random order, at GQA 1, 4, 7 and 8 and head dims 64 and 128; 32,768 in one of them.
TEST(DecodeAttentionTest, BatchesOfEdgeAndRandomLengths) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 128}) {
    for (int32_t group : {1, 4, 7, 8}) {
      std::vector<Seq> seqs;
      for (int32_t context : kEdgeContexts) {
        if (context < 32768 || (head_dim == 128 && group == 7)) seqs.push_back({context - 1, 1});
      }
      for (int i = 0; i < 12; ++i) seqs.push_back({static_cast<int32_t>(rng() % 3000), 1});
      seqs.push_back({0, 1, /*padding=*/true});
      std::shuffle(seqs.begin(), seqs.end(), rng);
      const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), 16, seqs);
      const std::vector<float> want = Reference(c);
      ExpectMatches(c, RunAttention(c), want, DescribeContexts(c));
      ExpectMatches(c, RunAttention(c, 1, 32768), want,
                    "max_context 32768, " + DescribeContexts(c));
    }
  }
}

// A decode bucket captured once with the model's length as its bound, replayed with three
// steps' contents (contexts far below the bound, a padding sequence); each replay equals
// the reference and, bit for bit, an eager launch with the same bounds.
TEST(DecodeAttentionTest, GraphReplayWithABoundAboveTheContexts) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<std::vector<Seq>> steps = {
      {{0, 1}, {14, 1}, {15, 1}, {16, 1}, {510, 1}, {299, 1}, {4096, 1}, {0, 1, true}},
      {{4096, 1}, {2047, 1}, {0, 1}, {32, 1}, {16, 1}, {510, 1}, {100, 1}, {0, 1, true}},
      {{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {0, 1, true}}};
  for (const AttentionShape& shape : {kQwen7b, MakeShape(16, 2, 64, 2.f)}) {
    std::vector<Case> cases;
    for (const std::vector<Seq>& seqs : steps) {
      cases.push_back(MakeCase(rng, shape, 16, seqs, /*min_blocks=*/800, /*table_capacity=*/800));
    }
    const Case& a = cases[0];
    DeviceCase dev(a);
    const DeviceStep step = dev.Step(a, /*max_num_new=*/1, /*max_context=*/32768);
    const size_t ws_bytes = AttentionWorkspaceBytes(step, a.shape);
    DeviceArray<uint8_t> ws(std::vector<uint8_t>(ws_bytes, 0));  // zero: the counters
    DeviceArray<bf16> out(static_cast<size_t>(a.rows) * a.out_width());
    cudaStream_t stream = nullptr;
    SLUICE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CapturedGraph graph;
    ASSERT_NO_FATAL_FAILURE(graph.Capture(stream, [&] {
      Attention(dev.q.get(), a.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, a.shape,
                ws.get(), ws_bytes, out.get(), stream);
    }));
    for (size_t i = 0; i < cases.size(); ++i) {
      const Case& c = cases[i];
      ASSERT_EQ(c.rows, a.rows);
      ASSERT_EQ(c.block_tables.size(), a.block_tables.size());
      dev.Upload(c);
      SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
      SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
      const std::vector<float> got = ToFloat(out.Download());
      const std::string what = "replay " + std::to_string(i) + ", " + DescribeContexts(c);
      ExpectMatches(c, got, Reference(c), what);
      std::vector<float> eager = RunAttention(c, 1, 32768);
      for (int32_t r = 0; r < c.rows; ++r) {  // padding rows may hold anything
        if (c.slots[r] >= 0) continue;
        std::fill_n(eager.begin() + static_cast<std::ptrdiff_t>(r) * c.out_width(), c.out_width(),
                    0.f);
      }
      std::vector<float> replayed = got;
      for (int32_t r = 0; r < c.rows; ++r) {
        if (c.slots[r] >= 0) continue;
        std::fill_n(replayed.begin() + static_cast<std::ptrdiff_t>(r) * c.out_width(),
                    c.out_width(), 0.f);
      }
      EXPECT_EQ(replayed, eager) << "graph replay and eager launch differ, " << what;
    }
    cudaStreamDestroy(stream);
  }
}

// The new token's K/V row as the model writes it: by KvWrite, the kernel just before the
// attention on the stream (a dependent launch on Hopper), after the cache lines around it were
// read by an earlier attention (which saw a stale row there). The attention must wait for the
// write and read the row's line as written, also where several rows share a line (kv rows of
// 32 and 128 bytes) and in a captured graph.
TEST(DecodeAttentionTest, SeesTheNewTokenWrittenJustBefore) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (const AttentionShape& shape :
       {kQwen7b, MakeShape(4, 1, 64, 2.f), MakeShape(2, 1, 16, 2.f)}) {
    const Case c = MakeCase(rng, shape, 16, {{0, 1}, {16, 1}, {4096, 1}, {510, 1}});
    const int32_t kvw = c.kv_width();
    // The new rows, and caches where those slots hold stale values.
    std::vector<float> k_new, v_new;
    std::vector<float> k_stale = c.k_cache, v_stale = c.v_cache;
    for (int32_t r = 0; r < c.rows; ++r) {
      const size_t at = static_cast<size_t>(c.slots[r]) * kvw;
      k_new.insert(k_new.end(), c.k_cache.begin() + at, c.k_cache.begin() + at + kvw);
      v_new.insert(v_new.end(), c.v_cache.begin() + at, c.v_cache.begin() + at + kvw);
      const std::vector<float> k_old = testing::RandomBf16Values(rng, kvw, -4.f, 4.f);
      const std::vector<float> v_old = testing::RandomBf16Values(rng, kvw, -4.f, 4.f);
      std::copy(k_old.begin(), k_old.end(), k_stale.begin() + at);
      std::copy(v_old.begin(), v_old.end(), v_stale.begin() + at);
    }
    const std::vector<float> want = Reference(c);
    DeviceCase dev(c);
    const DeviceArray<bf16> k_rows(ToBf16(k_new)), v_rows(ToBf16(v_new));
    const DeviceStep step = dev.Step(c, 1, 32768);
    const size_t ws_bytes = AttentionWorkspaceBytes(step, c.shape);
    DeviceArray<uint8_t> ws(std::vector<uint8_t>(ws_bytes, 0));  // zero: the counters
    DeviceArray<bf16> out(static_cast<size_t>(c.rows) * c.out_width());
    cudaStream_t stream = nullptr;
    SLUICE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    auto attention = [&] {
      Attention(dev.q.get(), c.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, c.shape,
                ws.get(), ws_bytes, out.get(), stream);
    };
    auto write_then_attend = [&] {
      KvWrite(k_rows.get(), v_rows.get(), kvw, dev.slots.get(), c.rows, kvw, dev.k_cache.get(),
              dev.v_cache.get(), stream);
      attention();
    };
    CapturedGraph graph;
    ASSERT_NO_FATAL_FAILURE(graph.Capture(stream, write_then_attend));
    for (bool replay : {false, true}) {
      dev.k_cache.Upload(ToBf16(k_stale));
      dev.v_cache.Upload(ToBf16(v_stale));
      attention();  // reads the stale rows' lines
      if (replay) {
        SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
      } else {
        write_then_attend();
      }
      SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
      SLUICE_CUDA_OK(cudaGetLastError());
      ExpectMatches(c, ToFloat(out.Download()), want,
                    (replay ? "graph, " : "stream, ") + DescribeContexts(c));
    }
    cudaStreamDestroy(stream);
  }
}

}  // namespace
}  // namespace sluice::llm::cuda

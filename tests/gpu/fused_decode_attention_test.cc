// The fused decode attention (attention_decode_fused.cuh) against the ops it replaces, bit for
// bit: RopeKvWriteAttention, and Attention with the fused merge (DecodeCombine::kFused), equal
// RopeKvWrite then Attention with CombineKernel (kSeparate) in the output of every real row and
// in both caches, at batches 1, 3, 8 and 32, contexts 1 to 32,000 around the partition and
// tile edges, GQA 1, 4, 7, 8 and 16, head dims 64 and 128, block sizes 16 and 32, padding rows,
// the grid bound of a graph and a tight one; and a captured graph replayed with new step
// contents, whose last blocks must find their counters zero again at every replay. The two-op
// chain's output is itself checked against attention_test_util's double-precision reference
// where that is cheap, so that two equally wrong results cannot pass.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

// Which ops run a decode layer's attention.
enum class Path {
  kTwoOps,       // RopeKvWrite, then Attention with CombineKernel: the reference
  kTwoOpsFused,  // RopeKvWrite, then Attention with the fused merge
  kOneOp,        // RopeKvWriteAttention with CombineKernel
  kOneOpFused,   // RopeKvWriteAttention with the fused merge (the model's default)
};

const char* Name(Path p) {
  switch (p) {
    case Path::kTwoOps:
      return "RopeKvWrite + Attention (separate merge)";
    case Path::kTwoOpsFused:
      return "RopeKvWrite + Attention (fused merge)";
    case Path::kOneOp:
      return "RopeKvWriteAttention (separate merge)";
    case Path::kOneOpFused:
      return "RopeKvWriteAttention (fused merge)";
  }
  return "?";
}

// A layer's inputs: the case's fused q|k|v rows split into dense q, k and v rows, and a rope
// table (Qwen2's base 1e6).
struct LayerInputs {
  std::vector<float> q, k, v, inv_freq;
};

LayerInputs InputsOf(const Case& c) {
  LayerInputs in;
  const int32_t qw = c.out_width(), kvw = c.kv_width();
  for (int32_t r = 0; r < c.rows; ++r) {
    const float* row = c.q.data() + static_cast<size_t>(r) * c.q_stride;
    in.q.insert(in.q.end(), row, row + qw);
    in.k.insert(in.k.end(), row + qw, row + qw + kvw);
    in.v.insert(in.v.end(), row + qw + kvw, row + qw + 2 * kvw);
  }
  const int32_t d = c.shape.head_dim;
  for (int32_t i = 0; i < d / 2; ++i) {
    in.inv_freq.push_back(1.f / std::pow(1e6f, static_cast<float>(2 * i) / d));
  }
  return in;
}

struct LayerOutputs {
  std::vector<bf16> out, q, k_cache, v_cache;
};

// The case's arrays and the layer's inputs on the device, a zeroed workspace and a NaN output.
struct DeviceLayer {
  DeviceLayer(const Case& c, const LayerInputs& in, int32_t max_context)
      : dev(c),
        q(ToBf16(in.q)),
        k(ToBf16(in.k)),
        v(ToBf16(in.v)),
        inv_freq(in.inv_freq),
        step(dev.Step(c, 1, max_context)),
        ws_bytes(AttentionWorkspaceBytes(step, c.shape)),
        ws(std::vector<uint8_t>(ws_bytes, 0)),
        out(static_cast<size_t>(c.rows) * c.out_width()) {
    PoisonOutput();
  }

  // NaN, set before the call returns: cudaMemset runs on the legacy stream, which the tests'
  // non-blocking streams do not wait for.
  void PoisonOutput() {
    EXPECT_EQ(cudaMemset(out.get(), 0xff, out.size() * sizeof(bf16)), cudaSuccess);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  }

  void Issue(const Case& c, Path path, cudaStream_t stream) {
    const bool fused_merge = path == Path::kTwoOpsFused || path == Path::kOneOpFused;
    const DecodeCombine combine = fused_merge ? DecodeCombine::kFused : DecodeCombine::kSeparate;
    if (path == Path::kOneOp || path == Path::kOneOpFused) {
      RopeKvWriteAttention(q.get(), k.get(), v.get(), inv_freq.get(), dev.k_cache.get(),
                           dev.v_cache.get(), step, c.shape, ws.get(), ws_bytes, out.get(), stream,
                           combine);
      return;
    }
    RopeKvWrite(q.get(), k.get(), v.get(), step.positions, inv_freq.get(), step.slots, c.rows,
                c.shape.num_q_heads, c.shape.num_kv_heads, c.shape.head_dim, dev.k_cache.get(),
                dev.v_cache.get(), stream);
    Attention(q.get(), c.out_width(), dev.k_cache.get(), dev.v_cache.get(), step, c.shape, ws.get(),
              ws_bytes, out.get(), stream, PrefillPath::kAuto, combine);
  }

  LayerOutputs Download() const {
    return {out.Download(), q.Download(), dev.k_cache.Download(), dev.v_cache.Download()};
  }

  DeviceCase dev;
  DeviceArray<bf16> q, k, v;
  DeviceArray<float> inv_freq;
  DeviceStep step;
  size_t ws_bytes;
  DeviceArray<uint8_t> ws;
  DeviceArray<bf16> out;
};

LayerOutputs RunLayer(const Case& c, const LayerInputs& in, Path path, int32_t max_context) {
  DeviceLayer layer(c, in, max_context);
  layer.Issue(c, path, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return layer.Download();
}

bool SameBits(const bf16* a, const bf16* b, size_t n) {
  return std::memcmp(a, b, n * sizeof(bf16)) == 0;
}

// got equals want bit for bit in every real row's output and in both caches; want's real rows
// are finite (NaN == NaN in bits would hide a row both skipped).
void ExpectSameLayer(const Case& c, const LayerOutputs& got, const LayerOutputs& want,
                     const std::string& what) {
  const size_t width = c.out_width();
  int bad_rows = 0;
  for (int32_t r = 0; r < c.rows; ++r) {
    if (c.slots[r] < 0) continue;  // padding: its output is unspecified
    const size_t at = r * width;
    for (size_t i = 0; i < width; ++i) {
      if (!std::isfinite(testing::Bf16ToFloat(want.out[at + i]))) {
        ADD_FAILURE() << what << ": reference row " << r << " is not finite";
        return;
      }
    }
    if (!SameBits(got.out.data() + at, want.out.data() + at, width) && bad_rows++ == 0) {
      ADD_FAILURE() << what << ": row " << r << " (context " << c.num_cached[c.row_seq[r]] + 1
                    << ") differs";
    }
  }
  EXPECT_EQ(bad_rows, 0) << what << ": rows that differ";
  EXPECT_TRUE(SameBits(got.k_cache.data(), want.k_cache.data(), want.k_cache.size()))
      << what << ": k cache differs";
  EXPECT_TRUE(SameBits(got.v_cache.data(), want.v_cache.data(), want.v_cache.size()))
      << what << ": v cache differs";
}

// Every path at both grid bounds against the two-op chain with CombineKernel; where cheap, that
// chain against the double reference (over its rotated q and written caches).
void CheckCase(const Case& c, const std::string& what) {
  const LayerInputs in = InputsOf(c);
  int64_t total_context = 0;
  for (size_t s = 0; s < c.seqs.size(); ++s) total_context += c.num_cached[s] + 1;
  for (int32_t bound : {0, 32768}) {
    const int32_t max_context = bound > 0 ? bound : c.max_context;
    const std::string at = what + ", max_context " + std::to_string(max_context);
    const LayerOutputs want = RunLayer(c, in, Path::kTwoOps, max_context);
    if (bound == 0 && total_context <= 20000) {
      Case rotated = c;
      rotated.q = ToFloat(want.q);
      rotated.q_stride = c.out_width();
      rotated.k_cache = ToFloat(want.k_cache);
      rotated.v_cache = ToFloat(want.v_cache);
      ExpectMatches(rotated, ToFloat(want.out), Reference(rotated), "reference check, " + at);
    }
    for (Path path : {Path::kTwoOpsFused, Path::kOneOp, Path::kOneOpFused}) {
      const LayerOutputs got = RunLayer(c, in, path, max_context);
      ExpectSameLayer(c, got, want, std::string(Name(path)) + ", " + at);
      if (path == Path::kOneOp || path == Path::kOneOpFused) {
        EXPECT_TRUE(SameBits(got.q.data(), ToBf16(in.q).data(), in.q.size()))
            << Name(path) << " wrote q, " << at;
      }
    }
  }
}

std::string Contexts(const Case& c) {
  std::string out;
  for (const Seq& s : c.seqs) {
    out += " " + std::to_string(s.cached + s.num_new) + (s.padding ? "(padding)" : "");
  }
  return out;
}

const std::vector<int32_t> kContexts = {1, 31, 32, 33, 100, 512, 4096, 32000};

// Batch 1 at every context; batches 3, 8 and 32 of the contexts in random order (32,000 once,
// the other places past the list random lengths up to 4,096) with a padding sequence.
std::vector<std::vector<Seq>> Batches(std::mt19937_64& rng) {
  std::vector<std::vector<Seq>> batches;
  for (int32_t context : kContexts) batches.push_back({{context - 1, 1}});
  for (int32_t batch : {3, 8, 32}) {
    std::vector<Seq> seqs = {{0, 1, /*padding=*/true}};
    for (int32_t i = 0; static_cast<int32_t>(seqs.size()) < batch; ++i) {
      const bool listed = i < static_cast<int32_t>(kContexts.size());
      const int32_t context = listed ? kContexts[(i + batch) % kContexts.size()]
                                     : 1 + static_cast<int32_t>(rng() % 4096);
      if (batch < 32 && context == 32000) continue;  // one long context in all (host memory)
      seqs.push_back({context - 1, 1});
    }
    std::shuffle(seqs.begin(), seqs.end(), rng);
    batches.push_back(seqs);
  }
  return batches;
}

TEST(FusedDecodeAttentionTest, EqualsRopeKvWriteThenAttentionBitForBit) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 128}) {
    for (int32_t group : {1, 4, 7, 8}) {
      for (int32_t block_size : {16, 32}) {
        const AttentionShape shape = MakeShape(2 * group, 2, head_dim, 2.f);
        for (const std::vector<Seq>& seqs : Batches(rng)) {
          const Case c = MakeCase(rng, shape, block_size, seqs);
          CheckCase(c, Describe(c) + ", contexts:" + Contexts(c));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// Qwen2-7B's heads (28 / 4, head_dim 128), the shape the model runs, at batches 1 and 8; and
// GQA 16, whose kv heads take two blocks of 8 q heads each (both stage the new row, the first
// writes it to the caches).
TEST(FusedDecodeAttentionTest, Qwen7bShapeAndTwoBlocksAKvHead) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<std::vector<Seq>> batches = {
      {{127, 1}},
      {{511, 1}},
      {{2047, 1}},
      {{0, 1}, {30, 1}, {99, 1}, {511, 1}, {4095, 1}, {1000, 1}, {0, 1, true}, {64, 1}}};
  for (const AttentionShape& shape : {kQwen7b, MakeShape(32, 2, 64, 2.f)}) {
    for (const std::vector<Seq>& seqs : batches) {
      const Case c = MakeCase(rng, shape, 16, seqs);
      CheckCase(c, Describe(c) + ", contexts:" + Contexts(c));
    }
  }
}

// One graph of RopeKvWriteAttention (fused merge) at the model's bound, replayed with three
// steps' contents and each step twice: every replay equals the two-op chain run eagerly on the
// same inputs, bit for bit (a counter left non-zero by a replay would make the next one's
// last block miss its merge: a row left NaN, or a merge of stale partials).
TEST(FusedDecodeAttentionTest, GraphReplaysResetTheCounters) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<std::vector<Seq>> steps = {
      {{0, 1}, {30, 1}, {31, 1}, {32, 1}, {510, 1}, {299, 1}, {4095, 1}, {0, 1, true}},
      {{4095, 1}, {2047, 1}, {0, 1}, {32, 1}, {16, 1}, {510, 1}, {100, 1}, {0, 1, true}},
      {{1, 1}, {2, 1}, {3, 1}, {4, 1}, {5, 1}, {6, 1}, {7, 1}, {0, 1, true}}};
  for (const AttentionShape& shape : {kQwen7b, MakeShape(16, 2, 64, 2.f)}) {
    std::vector<Case> cases;
    for (const std::vector<Seq>& seqs : steps) {
      cases.push_back(MakeCase(rng, shape, 16, seqs, /*min_blocks=*/800, /*table_capacity=*/800));
    }
    DeviceLayer layer(cases[0], InputsOf(cases[0]), 32768);
    cudaStream_t stream = nullptr;
    SLUICE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CapturedGraph graph;
    ASSERT_NO_FATAL_FAILURE(
        graph.Capture(stream, [&] { layer.Issue(cases[0], Path::kOneOpFused, stream); }));
    for (size_t i = 0; i < 2 * cases.size(); ++i) {
      const Case& c = cases[i / 2];
      const LayerInputs in = InputsOf(c);
      layer.dev.Upload(c);
      layer.q.Upload(ToBf16(in.q));
      layer.k.Upload(ToBf16(in.k));
      layer.v.Upload(ToBf16(in.v));
      layer.PoisonOutput();
      SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
      SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
      SLUICE_CUDA_OK(cudaGetLastError());
      const LayerOutputs want = RunLayer(c, in, Path::kTwoOps, 32768);
      ExpectSameLayer(
          c, layer.Download(), want,
          "replay " + std::to_string(i) + ", " + Describe(c) + ", contexts:" + Contexts(c));
    }
    cudaStreamDestroy(stream);
  }
}

}  // namespace
}  // namespace sluice::llm::cuda

// Paged attention (kernels.h, attention.cu) against a double-precision CPU reference on fresh
// random bf16 inputs: decode batches, prefill and chunked prefill, mixed batches with padding,
// GQA ratios, head dims and block sizes, loose grid bounds, and CUDA-graph replay. Block tables
// are shuffled, and every cache slot a sequence does not own holds NaN, so a read outside a
// sequence's context shows up as a NaN in its output.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
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
using testing::ToFloat;

TEST(AttentionKernelTest, DecodeSingleSequenceAtEachContextLength) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t context : {1, 15, 16, 17, 300, 4100, 33000}) {
    const Case c = MakeCase(rng, kQwen7b, 16, {{context - 1, 1}});
    Check(c, "context " + std::to_string(context));
  }
}

TEST(AttentionKernelTest, DecodeBatchOf37Sequences) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<int32_t> contexts = {1, 15, 16, 17, 300, 4100};
  std::vector<Seq> seqs = {{33000 - 1, 1}};
  while (seqs.size() < 37) seqs.push_back({contexts[rng() % contexts.size()] - 1, 1});
  std::shuffle(seqs.begin(), seqs.end(), rng);
  const Case c = MakeCase(rng, kQwen7b, 16, seqs);
  Check(c, Describe(c));
}

TEST(AttentionKernelTest, DecodeAcrossHeadDimsGqaRatiosAndBlockSizes) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {16, 32, 64, 96, 128, 160, 256}) {
    for (int32_t group : {1, 2, 7, 12}) {
      for (int32_t block_size : {16, 32}) {
        std::vector<Seq> seqs;
        for (int i = 0; i < 5; ++i) seqs.push_back({static_cast<int32_t>(rng() % 700), 1});
        const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), block_size, seqs);
        Check(c, Describe(c));
      }
    }
  }
}

TEST(AttentionKernelTest, PrefillPromptLengths) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  std::vector<Seq> seqs;
  for (int32_t n : {1, 2, 3, 17, 31, 32, 33, 63, 64, 65, 127, 300}) seqs.push_back({0, n});
  std::shuffle(seqs.begin(), seqs.end(), rng);
  const Case c = MakeCase(rng, MakeShape(14, 2, 128, 2.f), 16, seqs);
  Check(c, Describe(c));
}

TEST(AttentionKernelTest, ChunkedPrefillWithCachedPrefix) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  std::vector<Seq> seqs;
  for (int i = 0; i < 6; ++i) {
    seqs.push_back({1 + static_cast<int32_t>(rng() % 500), 2 + static_cast<int32_t>(rng() % 299)});
  }
  seqs.push_back({15, 300});  // prefix ends one short of a block boundary
  seqs.push_back({32, 33});   // prefix fills whole blocks
  const Case c = MakeCase(rng, MakeShape(14, 2, 128, 2.f), 16, seqs);
  Check(c, Describe(c));
}

TEST(AttentionKernelTest, PrefillAcrossHeadDimsGqaRatiosAndBlockSizes) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {16, 32, 64, 96, 128, 160, 192, 224, 256}) {
    for (int32_t group : {1, 2, 7}) {
      for (int32_t block_size : {16, 32}) {
        std::vector<Seq> seqs = {
            {0, 2 + static_cast<int32_t>(rng() % 70)},
            {static_cast<int32_t>(rng() % 100), 2 + static_cast<int32_t>(rng() % 70)}};
        const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), block_size, seqs);
        Check(c, Describe(c));
      }
    }
  }
}

// Decodes, prefills and chunked prefills in one step, then a graph bucket's padding rows.
std::vector<Seq> MixedSeqs(std::mt19937_64& rng) {
  std::vector<Seq> seqs = {{0, 45}, {300, 1}, {0, 1}, {4099, 1}, {100, 77}, {16, 1}, {31, 2}};
  std::shuffle(seqs.begin(), seqs.end(), rng);
  for (int i = 0; i < 3; ++i) seqs.push_back({0, 1, /*padding=*/true});
  return seqs;
}

TEST(AttentionKernelTest, MixedBatchWithPaddingRows) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t block_size : {16, 32}) {
    const Case c = MakeCase(rng, kQwen7b, block_size, MixedSeqs(rng));
    Check(c, Describe(c));
  }
}

TEST(AttentionKernelTest, LooseGridBoundsAndSmallWorkspaceGiveTheSameResult) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  // The second case is small enough that loose bounds add decode partitions and prefill tiles
  // that have no work (the first one's grid is capped by its batch size).
  const std::vector<Seq> small = {{0, 20}, {300, 1}, {16, 1}, {31, 2}, {0, 1, true}, {0, 1, true}};
  for (const std::vector<Seq>& seqs : {MixedSeqs(rng), small}) {
    const Case c = MakeCase(rng, kQwen7b, 16, seqs);
    const std::vector<float> want = Reference(c);
    const std::vector<float> tight = RunAttention(c);
    ExpectMatches(c, tight, want, "tight bounds, " + Describe(c));
    // A captured graph's bounds: the model's max length, a bucket's token budget.
    const std::vector<float> loose = RunAttention(c, 512, 32768);
    ExpectMatches(c, loose, want, "max_num_new 512, max_context 32768, " + Describe(c));
    ExpectMatches(c, loose, tight, "loose vs tight bounds, " + Describe(c));
    // Without a workspace the decode kernel does not split contexts.
    ExpectMatches(c, RunAttention(c, 512, 32768, /*workspace_bytes=*/0), want,
                  "no workspace, " + Describe(c));
  }
}

// Captures Attention() on step a (grid bounds: max_num_new a.rows, max_context), replays it,
// then uploads step b's contents into the same buffers and replays again; both against the
// reference. a and b are steps of one graph bucket: same rows, blocks and table size.
void ExpectGraphReplaysBoth(const Case& a, const Case& b, int32_t max_context,
                            PrefillPath prefill = PrefillPath::kAuto) {
  ASSERT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.num_blocks, b.num_blocks);
  ASSERT_EQ(a.block_tables.size(), b.block_tables.size());

  DeviceCase dev(a);
  const DeviceStep step = dev.Step(a, /*max_num_new=*/a.rows, max_context);
  const size_t ws_bytes = AttentionWorkspaceBytes(step, a.shape);
  DeviceArray<uint8_t> ws(std::vector<uint8_t>(ws_bytes, 0));  // zero: the counters
  DeviceArray<bf16> out(static_cast<size_t>(a.rows) * a.out_width());
  cudaStream_t stream = nullptr;
  SLUICE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CapturedGraph graph;
  ASSERT_NO_FATAL_FAILURE(graph.Capture(stream, [&] {
    Attention(dev.q.get(), a.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, a.shape,
              ws.get(), ws_bytes, out.get(), stream, prefill);
  }));

  SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
  SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
  ExpectMatches(a, ToFloat(out.Download()), Reference(a), "first replay, " + Describe(a));

  dev.Upload(b);
  SLUICE_CUDA_OK(cudaGraphLaunch(graph.exec(), stream));
  SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
  ExpectMatches(b, ToFloat(out.Download()), Reference(b),
                "replay with new contents, " + Describe(b));

  cudaStreamDestroy(stream);
}

TEST(AttentionKernelTest, GraphReplayWithNewStepContents) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  // Two steps of the same bucket: same rows and sequence count, different contexts.
  const std::vector<Seq> first = {{5, 1}, {0, 20}, {300, 1}, {40, 1}, {0, 1, true}};
  const std::vector<Seq> second = {{700, 1}, {33, 20}, {2, 1}, {129, 1}, {0, 1, true}};
  const Case a = MakeCase(rng, kQwen7b, 16, first, /*min_blocks=*/200, /*table_capacity=*/100);
  const Case b = MakeCase(rng, kQwen7b, 16, second, 200, 100);
  ExpectGraphReplaysBoth(a, b, /*max_context=*/32768);
}

// --- The tensor-core prefill kernel (head_dim 64, 96, 128, 256) ---
// Its tiles: 64 rows of (position, q head) pairs of one kv head's group, 64 keys (32 at
// head_dim 256); the lengths below straddle those and the block size.

std::string DescribeSeqs(const Case& c) {
  std::string out = Describe(c) + ", (cached, new):";
  for (const Seq& s : c.seqs) {
    out += " (" + std::to_string(s.cached) + ", " + std::to_string(s.num_new) + ")";
  }
  return out;
}

// Prompts of 1 to 4100 tokens (one token is a decode), several in one launch, at GQA ratios
// 1, 4, 7 and 8 and head dims 64 and 128; the reference covers a sample of the long ones' rows.
TEST(AttentionKernelTest, TensorCorePrefillLengthsGqaRatiosAndHeadDims) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<int32_t> lengths = {1,   2,   3,   7,   9,    15,   16,   17,
                                        31,  63,  64,  65,  100,  127,  128,  129,
                                        191, 255, 257, 511, 1000, 1023, 2049, 4100};
  for (int32_t head_dim : {64, 128}) {
    for (int32_t group : {1, 4, 7, 8}) {
      std::vector<Seq> seqs;
      // A third of the lengths each time (all of them across the 8 cases) and two random ones.
      for (size_t i = (head_dim / 64 + group) % 3; i < lengths.size(); i += 3) {
        seqs.push_back({0, lengths[i]});
      }
      seqs.push_back({0, 2 + static_cast<int32_t>(rng() % 4099)});
      seqs.push_back({0, 2 + static_cast<int32_t>(rng() % 300)});
      std::shuffle(seqs.begin(), seqs.end(), rng);
      const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), 16, seqs);
      const RowSample sample = SampleRows(rng, c, 24, 24);
      ExpectMatches(c, RunAttention(c), Reference(c, sample), DescribeSeqs(c), sample);
    }
  }
}

// Chunks of prompts after cached prefixes of any length (prefix-cache hits and chunked
// prefill): the rows see the prefix and the chunk's earlier rows, through shuffled blocks of
// 16 and of an odd size.
TEST(AttentionKernelTest, TensorCorePrefillAfterCachedPrefixes) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 128}) {
    for (int32_t group : {1, 7}) {
      for (int32_t block_size : {16, 7}) {
        std::vector<Seq> seqs;
        for (int32_t cached : {1, 15, 17, 63, 65, 100, 1000, 3001}) {
          seqs.push_back({cached, 2 + static_cast<int32_t>(rng() % 700)});
        }
        seqs.push_back({64, 64});  // prefix and chunk on tile boundaries
        seqs.push_back({static_cast<int32_t>(rng() % 4000), 2 + static_cast<int32_t>(rng() % 200)});
        std::shuffle(seqs.begin(), seqs.end(), rng);
        const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), block_size, seqs);
        const RowSample sample = SampleRows(rng, c, 30, 30);
        ExpectMatches(c, RunAttention(c), Reference(c, sample), DescribeSeqs(c), sample);
      }
    }
  }
}

// One long prompt at Qwen2-7B's shape, and a long chunk after a long prefix; the reference
// covers a sample of rows (first and last ones, random ones).
TEST(AttentionKernelTest, TensorCorePrefillLongSequences) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (const Seq& seq : {Seq{0, 16384}, Seq{13001, 3500}}) {
    const Case c = MakeCase(rng, kQwen7b, 16, {seq});
    const RowSample sample = SampleRows(rng, c, 8, 48);
    ExpectMatches(c, RunAttention(c), Reference(c, sample), DescribeSeqs(c), sample);
  }
}

// The tensor-core and CUDA-core kernels agree on the same step (every row compared with the
// reference for both; a failure here that the reference checks do not show points at the
// reference).
TEST(AttentionKernelTest, TensorCoreAndCudaCorePrefillAgree) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 96, 128, 256}) {
    std::vector<Seq> seqs = {{0, 300}, {45, 2}, {0, 1}, {129, 77}, {0, 64}, {0, 1, true}};
    const Case c = MakeCase(rng, MakeShape(14, 2, head_dim, 2.f), 16, seqs);
    const std::vector<float> want = Reference(c);
    const std::vector<float> tc = RunAttention(c);
    const std::vector<float> cc = RunAttention(c, 0, 0, -1, PrefillPath::kCudaCores);
    ExpectMatches(c, tc, want, "tensor cores, " + DescribeSeqs(c));
    ExpectMatches(c, cc, want, "CUDA cores, " + DescribeSeqs(c));
    ExpectMatches(c, tc, cc, "tensor cores against CUDA cores, " + DescribeSeqs(c));
  }
}

// The worst ||got - want|| / ||want|| over every (row, q head) of the prefill rows.
double WorstPrefillRelErr(const Case& c, const std::vector<float>& got,
                          const std::vector<float>& want) {
  const int32_t d = c.shape.head_dim;
  double worst = 0;
  for (int32_t r = 0; r < c.rows; ++r) {
    if (c.slots[r] < 0 || c.num_new[c.row_seq[r]] <= 1) continue;
    for (int32_t h = 0; h < c.shape.num_q_heads; ++h) {
      double err = 0, norm = 1e-30;
      for (int32_t i = 0; i < d; ++i) {
        const size_t at = static_cast<size_t>(r) * c.out_width() + static_cast<size_t>(h) * d + i;
        err += (got[at] - want[at]) * (got[at] - want[at]);
        norm += static_cast<double>(want[at]) * want[at];
      }
      worst = std::max(worst, std::sqrt(err / norm));
    }
  }
  return worst;
}

// The chunks of CudaModelTest's llama3_gpu fixture (4 q heads on 1 kv head of 64; prompts of
// 5, 13 and 40 tokens in chunks ending at the reference positions), at sharpness up to a
// trained model's: rounding the softmax weights to bf16 costs ~2^-9 per weight, so the
// tensor-core rows must stay within a few bf16 output roundings of the reference, not merely
// within the 1 % the tests above allow.
TEST(AttentionKernelTest, TensorCorePrefillAtTheLlama3FixtureShapeIsBf16Accurate) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  const std::vector<Seq> seqs = {{1, 4}, {1, 6}, {7, 6}, {1, 20}, {21, 19}, {0, 40}, {3, 61}};
  for (float sharpness : {1.f, 2.f, 8.f, 24.f}) {
    const Case c = MakeCase(rng, MakeShape(4, 1, 64, sharpness), 16, seqs);
    const std::vector<float> want = Reference(c);
    const double tc = WorstPrefillRelErr(c, RunAttention(c), want);
    const double cc =
        WorstPrefillRelErr(c, RunAttention(c, 0, 0, -1, PrefillPath::kCudaCores), want);
    std::printf(
        "[ result   ] sharpness %g: worst relative error, tensor cores %.3g, CUDA cores %.3g\n",
        sharpness, tc, cc);
    EXPECT_LE(tc, 5e-3) << "sharpness " << sharpness << ", " << DescribeSeqs(c);
    EXPECT_LE(cc, 5e-3) << "sharpness " << sharpness << ", " << DescribeSeqs(c);
  }
}

// --- The wgmma prefill kernel (attention_prefill_wgmma.cu) ---
// What an sm_90 device runs for head_dim 64 and 128 by default (every tensor-core test above
// then covers it; elsewhere these tests run the mma.sync kernel on both paths). Its tiles: 128
// rows of (position, q head) pairs in two warpgroups of 64, K/V tiles of 128 positions; the
// lengths and prefixes below straddle those.

// Each wgmma schedule by name (SLUICE_CUDA_PREFILL_WGMMA's values 1 to 5), whatever the default;
// on a device other than sm_90 each runs the mma.sync kernel.
struct WgmmaSchedule {
  PrefillPath path;
  const char* name;
};
constexpr WgmmaSchedule kWgmmaSchedules[] = {
    {PrefillPath::kWgmmaInSequence, "wgmma 1 (in sequence)"},
    {PrefillPath::kWgmmaOverlapped, "wgmma 2 (overlapped)"},
    {PrefillPath::kWgmmaWarpSpecialized, "wgmma 3 (warp-specialized, ping-pong)"},
    {PrefillPath::kWgmmaWarpSpecializedNoPingPong, "wgmma 4 (warp-specialized)"},
    {PrefillPath::kWgmmaWarpSpecializedOverlapped, "wgmma 5 (warp-specialized, overlapped)"}};
// The warp-specialized schedules alone.
constexpr WgmmaSchedule kWarpSpecialized[] = {kWgmmaSchedules[2], kWgmmaSchedules[3],
                                              kWgmmaSchedules[4]};

// Whether the default path runs the wgmma kernel here (unless SLUICE_CUDA_PREFILL_WGMMA=0).
bool WgmmaDevice() {
  int device = 0, major = 0, minor = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  return major == 9 && minor == 0;
}

// Both tensor-core kernels on the same steps, each against the reference on a sample of rows
// and against each other on every row: prompts and chunks after prefixes of any length, at
// GQA ratios 1, 4, 7 and 8 (a warpgroup's 64 rows then end mid-position). The default path and
// each wgmma schedule by name.
TEST(AttentionKernelTest, WgmmaAndMmaSyncPrefillAgree) {
  SLUICE_REQUIRE_GPU();
  std::printf("[ info     ] default path: %s\n",
              WgmmaDevice() ? "wgmma kernel (sm_90)" : "mma.sync kernel (not sm_90)");
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 128}) {
    for (int32_t group : {1, 4, 7, 8}) {
      std::vector<Seq> seqs = {{0, 2},     {0, 63},  {0, 64},  {0, 65},     {0, 127},   {0, 128},
                               {0, 129},   {1, 127}, {127, 2}, {127, 130},  {128, 128}, {129, 257},
                               {255, 300}, {0, 1},   {300, 1}, {0, 1, true}};
      seqs.push_back({0, 500 + static_cast<int32_t>(rng() % 1600)});
      seqs.push_back({static_cast<int32_t>(rng() % 3000), 2 + static_cast<int32_t>(rng() % 700)});
      std::shuffle(seqs.begin(), seqs.end(), rng);
      const Case c = MakeCase(rng, MakeShape(2 * group, 2, head_dim, 2.f), 16, seqs);
      const RowSample sample = SampleRows(rng, c, 24, 24);
      const std::vector<float> want = Reference(c, sample);
      const std::vector<float> wg = RunAttention(c);
      const std::vector<float> mma = RunAttention(c, 0, 0, -1, PrefillPath::kMmaSync);
      ExpectMatches(c, wg, want, "default (wgmma on sm_90), " + DescribeSeqs(c), sample);
      ExpectMatches(c, mma, want, "mma.sync, " + DescribeSeqs(c), sample);
      ExpectMatches(c, wg, mma, "default against mma.sync, " + DescribeSeqs(c));
      for (const WgmmaSchedule& schedule : kWgmmaSchedules) {
        const std::vector<float> got = RunAttention(c, 0, 0, -1, schedule.path);
        ExpectMatches(c, got, want, std::string(schedule.name) + ", " + DescribeSeqs(c), sample);
        ExpectMatches(c, got, mma,
                      std::string(schedule.name) + " against mma.sync, " + DescribeSeqs(c));
      }
    }
  }
}

// Qwen2-7B's shape with block sizes 16, 32 and an odd 7 (a tile's positions then cross pages
// mid-chunk), long chunks after long prefixes, several in one launch; the default path and the
// warp-specialized schedules, whose copying warps look the pages up themselves.
TEST(AttentionKernelTest, WgmmaPrefillLongChunksAfterPrefixes) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t block_size : {16, 32, 7}) {
    std::vector<Seq> seqs = {
        {0, 2500},
        {4000, 1100},
        {1023, 1025},
        {static_cast<int32_t>(rng() % 5000), 2 + static_cast<int32_t>(rng() % 2000)},
        {77, 1}};
    std::shuffle(seqs.begin(), seqs.end(), rng);
    const Case c = MakeCase(rng, kQwen7b, block_size, seqs);
    const RowSample sample = SampleRows(rng, c, 16, 32);
    const std::vector<float> want = Reference(c, sample);
    ExpectMatches(c, RunAttention(c), want, DescribeSeqs(c), sample);
    for (const WgmmaSchedule& schedule : kWarpSpecialized) {
      ExpectMatches(c, RunAttention(c, 0, 0, -1, schedule.path), want,
                    std::string(schedule.name) + ", " + DescribeSeqs(c), sample);
    }
  }
}

// A captured graph of a step with multi-tile prefills, replayed with new lengths, prefixes and
// tables: the grid bound of the capture covers the new step's tiles. The default path and the
// warp-specialized schedules (the same grid bound).
TEST(AttentionKernelTest, WgmmaPrefillGraphReplayWithNewStepContents) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  for (int32_t head_dim : {64, 128}) {
    const AttentionShape shape = MakeShape(head_dim == 128 ? 28 : 16, 4, head_dim);
    const std::vector<Seq> first = {{0, 300}, {5, 1}, {0, 129}, {40, 1}, {0, 1, true}};
    const std::vector<Seq> second = {{700, 2}, {129, 427}, {2, 1}, {0, 1}, {0, 1, true}};
    const Case a = MakeCase(rng, shape, 16, first, /*min_blocks=*/300, /*table_capacity=*/100);
    const Case b = MakeCase(rng, shape, 16, second, 300, 100);
    ExpectGraphReplaysBoth(a, b, /*max_context=*/4096);
    for (const WgmmaSchedule& schedule : kWarpSpecialized) {
      SCOPED_TRACE(schedule.name);
      ExpectGraphReplaysBoth(a, b, /*max_context=*/4096, schedule.path);
    }
  }
}

}  // namespace
}  // namespace sluice::llm::cuda

// Paged attention (kernels.h, attention.cu) against a double-precision CPU reference on fresh
// random bf16 inputs: decode batches, prefill and chunked prefill, mixed batches with padding,
// GQA ratios, head dims and block sizes, loose grid bounds, and CUDA-graph replay. Block tables
// are shuffled, and every cache slot a sequence does not own holds NaN, so a read outside a
// sequence's context shows up as a NaN in its output.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::DeviceArray;
using testing::FreshRng;
using testing::RandomBf16Values;
using testing::ToBf16;
using testing::ToFloat;

struct Seq {
  int32_t cached = 0;
  int32_t num_new = 1;
  bool padding = false;  // a graph bucket's padding sequence: its row has slot -1
};

// One step's inputs on the host. K/V caches hold NaN everywhere but the sequences' contexts.
struct Case {
  AttentionShape shape;
  int32_t block_size = 16;
  int32_t rows = 0;
  int32_t q_stride = 0;
  int32_t num_blocks = 0;
  std::vector<Seq> seqs;
  std::vector<float> q;                 // [rows, q_stride]
  std::vector<float> k_cache, v_cache;  // [num_blocks * block_size, kv_width]
  std::vector<int32_t> tokens, positions, slots, row_seq;
  std::vector<int32_t> first_row, num_new, num_cached, block_begin, block_tables;
  int32_t max_num_new = 0;
  int32_t max_context = 0;

  int32_t kv_width() const { return shape.num_kv_heads * shape.head_dim; }
  int32_t out_width() const { return shape.num_q_heads * shape.head_dim; }
};

AttentionShape MakeShape(int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                         float sharpness = 1.f) {
  return {q_heads, kv_heads, head_dim, sharpness / std::sqrt(static_cast<float>(head_dim))};
}

// Lays the sequences out in rows, gives them blocks from a shuffled pool of at least
// `min_blocks` blocks, and block tables padded to at least `table_capacity` entries (fixed
// sizes let a graph test upload a second case into the same device arrays).
Case MakeCase(std::mt19937_64& rng, const AttentionShape& shape, int32_t block_size,
              const std::vector<Seq>& seqs, int32_t min_blocks = 0, int32_t table_capacity = 0) {
  Case c;
  c.shape = shape;
  c.block_size = block_size;
  c.seqs = seqs;
  int32_t blocks_needed = 0;
  for (const Seq& s : seqs) {
    blocks_needed += (s.cached + s.num_new + block_size - 1) / block_size;
    c.rows += s.num_new;
  }
  c.num_blocks = std::max(min_blocks, blocks_needed + 3);
  std::vector<int32_t> pool(c.num_blocks);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);

  const int32_t kvw = c.kv_width();
  const size_t cache_elems = static_cast<size_t>(c.num_blocks) * block_size * kvw;
  c.k_cache.assign(cache_elems, std::numeric_limits<float>::quiet_NaN());
  c.v_cache.assign(cache_elems, std::numeric_limits<float>::quiet_NaN());
  // Fused q|k|v rows, as the model's QKV projection writes them.
  c.q_stride = (shape.num_q_heads + 2 * shape.num_kv_heads) * shape.head_dim;
  c.q = RandomBf16Values(rng, static_cast<size_t>(c.rows) * c.q_stride);

  int32_t row = 0;
  size_t next_block = 0;
  for (size_t si = 0; si < seqs.size(); ++si) {
    const Seq& s = seqs[si];
    const int32_t context = s.cached + s.num_new;
    const int32_t nb = (context + block_size - 1) / block_size;
    c.first_row.push_back(row);
    c.num_new.push_back(s.num_new);
    c.num_cached.push_back(s.cached);
    c.block_begin.push_back(static_cast<int32_t>(c.block_tables.size()));
    for (int32_t b = 0; b < nb; ++b) c.block_tables.push_back(pool[next_block++]);
    const int32_t* table = c.block_tables.data() + c.block_begin.back();
    auto slot_of = [&](int32_t pos) {
      return table[pos / block_size] * block_size + pos % block_size;
    };
    if (!s.padding) {
      // The context, new tokens included (KvWrite has run). Padding keeps its NaN.
      for (int32_t pos = 0; pos < context; ++pos) {
        const size_t at = static_cast<size_t>(slot_of(pos)) * kvw;
        const std::vector<float> k = RandomBf16Values(rng, kvw);
        const std::vector<float> v = RandomBf16Values(rng, kvw);
        std::copy(k.begin(), k.end(), c.k_cache.begin() + at);
        std::copy(v.begin(), v.end(), c.v_cache.begin() + at);
      }
    }
    for (int32_t j = 0; j < s.num_new; ++j, ++row) {
      c.tokens.push_back(0);
      c.positions.push_back(s.cached + j);
      c.slots.push_back(s.padding ? -1 : slot_of(s.cached + j));
      c.row_seq.push_back(static_cast<int32_t>(si));
    }
    c.max_num_new = std::max(c.max_num_new, s.num_new);
    c.max_context = std::max(c.max_context, context);
  }
  if (static_cast<int32_t>(c.block_tables.size()) < table_capacity) {
    c.block_tables.resize(table_capacity, 0);
  }
  return c;
}

// Double-precision attention; padding rows are left NaN (not compared).
std::vector<float> Reference(const Case& c) {
  const int32_t d = c.shape.head_dim;
  const int32_t group = c.shape.num_q_heads / c.shape.num_kv_heads;
  const int32_t kvw = c.kv_width();
  std::vector<float> out(static_cast<size_t>(c.rows) * c.out_width(),
                         std::numeric_limits<float>::quiet_NaN());
  std::vector<double> w;
  std::vector<double> acc(d);
  for (size_t si = 0; si < c.seqs.size(); ++si) {
    if (c.seqs[si].padding) continue;
    const int32_t* table = c.block_tables.data() + c.block_begin[si];
    for (int32_t j = 0; j < c.num_new[si]; ++j) {
      const int32_t r = c.first_row[si] + j;
      const int32_t len = c.num_cached[si] + j + 1;
      w.resize(len);
      for (int32_t h = 0; h < c.shape.num_q_heads; ++h) {
        const float* qv =
            c.q.data() + static_cast<size_t>(r) * c.q_stride + static_cast<size_t>(h) * d;
        const size_t head_off = static_cast<size_t>(h / group) * d;
        double mx = -INFINITY;
        for (int32_t p = 0; p < len; ++p) {
          const size_t slot =
              static_cast<size_t>(table[p / c.block_size]) * c.block_size + p % c.block_size;
          const float* kv = c.k_cache.data() + slot * kvw + head_off;
          double dot = 0;
          for (int32_t i = 0; i < d; ++i) dot += static_cast<double>(qv[i]) * kv[i];
          w[p] = dot * c.shape.scale;
          mx = std::max(mx, w[p]);
        }
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int32_t p = 0; p < len; ++p) {
          const size_t slot =
              static_cast<size_t>(table[p / c.block_size]) * c.block_size + p % c.block_size;
          const float* vv = c.v_cache.data() + slot * kvw + head_off;
          const double e = std::exp(w[p] - mx);
          sum += e;
          for (int32_t i = 0; i < d; ++i) acc[i] += e * vv[i];
        }
        float* o = out.data() + static_cast<size_t>(r) * c.out_width() + static_cast<size_t>(h) * d;
        for (int32_t i = 0; i < d; ++i) o[i] = static_cast<float>(acc[i] / sum);
      }
    }
  }
  return out;
}

// The case's arrays on the device, and a DeviceStep pointing at them.
struct DeviceCase {
  explicit DeviceCase(const Case& c)
      : q(ToBf16(c.q)),
        k_cache(ToBf16(c.k_cache)),
        v_cache(ToBf16(c.v_cache)),
        tokens(c.tokens),
        positions(c.positions),
        slots(c.slots),
        row_seq(c.row_seq),
        first_row(c.first_row),
        num_new(c.num_new),
        num_cached(c.num_cached),
        block_begin(c.block_begin),
        block_tables(c.block_tables) {}

  // Overwrites every array with another case of the same sizes (graph replay).
  void Upload(const Case& c) {
    q.Upload(ToBf16(c.q));
    k_cache.Upload(ToBf16(c.k_cache));
    v_cache.Upload(ToBf16(c.v_cache));
    tokens.Upload(c.tokens);
    positions.Upload(c.positions);
    slots.Upload(c.slots);
    row_seq.Upload(c.row_seq);
    first_row.Upload(c.first_row);
    num_new.Upload(c.num_new);
    num_cached.Upload(c.num_cached);
    block_begin.Upload(c.block_begin);
    block_tables.Upload(c.block_tables);
  }

  DeviceStep Step(const Case& c, int32_t max_num_new, int32_t max_context) const {
    DeviceStep s;
    s.tokens = tokens.get();
    s.positions = positions.get();
    s.slots = slots.get();
    s.row_seq = row_seq.get();
    s.seq_first_row = first_row.get();
    s.seq_num_new = num_new.get();
    s.seq_num_cached = num_cached.get();
    s.seq_block_begin = block_begin.get();
    s.block_tables = block_tables.get();
    s.rows = c.rows;
    s.num_seqs = static_cast<int32_t>(c.seqs.size());
    s.block_size = c.block_size;
    s.max_num_new = max_num_new;
    s.max_context = max_context;
    return s;
  }

  DeviceArray<bf16> q, k_cache, v_cache;
  DeviceArray<int32_t> tokens, positions, slots, row_seq;
  DeviceArray<int32_t> first_row, num_new, num_cached, block_begin, block_tables;
};

const float kGuard = 12288.f;  // exactly representable in bf16 (3 * 2^12)

// Runs Attention with the given grid bounds (0: the case's own maxima) and returns the output
// rows. The output buffer has one guard row after the last row, which must stay untouched.
// `workspace_bytes` < 0 gives the op what AttentionWorkspaceBytes asks for.
std::vector<float> RunAttention(const Case& c, int32_t max_num_new = 0, int32_t max_context = 0,
                                int64_t workspace_bytes = -1) {
  DeviceCase dev(c);
  const DeviceStep step = dev.Step(c, max_num_new > 0 ? max_num_new : c.max_num_new,
                                   max_context > 0 ? max_context : c.max_context);
  const size_t ws_bytes = workspace_bytes < 0 ? AttentionWorkspaceBytes(step, c.shape)
                                              : static_cast<size_t>(workspace_bytes);
  DeviceArray<uint8_t> ws(ws_bytes);
  const size_t out_elems = static_cast<size_t>(c.rows) * c.out_width();
  DeviceArray<bf16> out(std::vector<bf16>(out_elems + c.out_width(), testing::FloatToBf16(kGuard)));
  Attention(dev.q.get(), c.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, c.shape, ws.get(),
            ws_bytes, out.get(), /*stream=*/nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> all = ToFloat(out.Download());
  for (size_t i = out_elems; i < all.size(); ++i) {
    if (all[i] != kGuard) {
      ADD_FAILURE() << "write past the last row at element " << i - out_elems;
      break;
    }
  }
  all.resize(out_elems);
  return all;
}

// Compares every non-padding row: |got - want| <= 1e-2 |want| + 1e-4 (bf16 output; NaN fails).
void ExpectMatches(const Case& c, const std::vector<float>& got, const std::vector<float>& want,
                   const std::string& what) {
  const int32_t width = c.out_width();
  int64_t bad = 0;
  double worst = 0;
  std::string first;
  for (int32_t r = 0; r < c.rows; ++r) {
    if (c.slots[r] < 0) continue;  // padding row: may hold anything
    for (int32_t i = 0; i < width; ++i) {
      const size_t at = static_cast<size_t>(r) * width + i;
      const double err = std::abs(static_cast<double>(got[at]) - want[at]);
      const double tol = 1e-2 * std::abs(want[at]) + 1e-4;
      if (!(err <= tol)) {
        if (bad++ == 0) {
          first = "row " + std::to_string(r) + " (seq " + std::to_string(c.row_seq[r]) +
                  ", position " + std::to_string(c.positions[r]) + ") head " +
                  std::to_string(i / c.shape.head_dim) + " dim " +
                  std::to_string(i % c.shape.head_dim) + ": got " + std::to_string(got[at]) +
                  " want " + std::to_string(want[at]);
        }
        worst = std::isnan(err) ? err : std::max(worst, err);
      }
    }
  }
  EXPECT_EQ(bad, 0) << what << ": " << bad << " mismatches, first " << first << ", worst abs error "
                    << worst;
}

void Check(const Case& c, const std::string& what) {
  ExpectMatches(c, RunAttention(c), Reference(c), what);
}

std::string Describe(const Case& c) {
  return "q_heads " + std::to_string(c.shape.num_q_heads) + " kv_heads " +
         std::to_string(c.shape.num_kv_heads) + " head_dim " + std::to_string(c.shape.head_dim) +
         " block_size " + std::to_string(c.block_size) + " seqs " + std::to_string(c.seqs.size()) +
         " rows " + std::to_string(c.rows);
}

// Qwen2-7B: 28 q heads, 4 kv heads (GQA 7), head_dim 128.
const AttentionShape kQwen7b = MakeShape(28, 4, 128);

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

TEST(AttentionKernelTest, GraphReplayWithNewStepContents) {
  SLUICE_REQUIRE_GPU();
  std::mt19937_64 rng = FreshRng();
  // Two steps of the same bucket: same rows and sequence count, different contexts.
  const std::vector<Seq> first = {{5, 1}, {0, 20}, {300, 1}, {40, 1}, {0, 1, true}};
  const std::vector<Seq> second = {{700, 1}, {33, 20}, {2, 1}, {129, 1}, {0, 1, true}};
  const Case a = MakeCase(rng, kQwen7b, 16, first, /*min_blocks=*/200, /*table_capacity=*/100);
  const Case b = MakeCase(rng, kQwen7b, 16, second, 200, 100);
  ASSERT_EQ(a.rows, b.rows);
  ASSERT_EQ(a.num_blocks, b.num_blocks);
  ASSERT_EQ(a.block_tables.size(), b.block_tables.size());

  DeviceCase dev(a);
  const DeviceStep step = dev.Step(a, /*max_num_new=*/a.rows, /*max_context=*/32768);
  const size_t ws_bytes = AttentionWorkspaceBytes(step, a.shape);
  DeviceArray<uint8_t> ws(ws_bytes);
  DeviceArray<bf16> out(static_cast<size_t>(a.rows) * a.out_width());
  cudaStream_t stream = nullptr;
  SLUICE_CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  SLUICE_CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  Attention(dev.q.get(), a.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, a.shape, ws.get(),
            ws_bytes, out.get(), stream);
  SLUICE_CUDA_OK(cudaStreamEndCapture(stream, &graph));
  SLUICE_CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));

  SLUICE_CUDA_OK(cudaGraphLaunch(exec, stream));
  SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
  ExpectMatches(a, ToFloat(out.Download()), Reference(a), "first replay");

  dev.Upload(b);
  SLUICE_CUDA_OK(cudaGraphLaunch(exec, stream));
  SLUICE_CUDA_OK(cudaStreamSynchronize(stream));
  ExpectMatches(b, ToFloat(out.Download()), Reference(b), "replay with new contents");

  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace sluice::llm::cuda

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

// Which rows a check covers (1) when the reference of every row would cost too much; an
// empty sample covers every row.
using RowSample = std::vector<uint8_t>;

// Per sequence: its first and last `edge` rows and about `random` others.
RowSample SampleRows(std::mt19937_64& rng, const Case& c, int32_t edge, int32_t random) {
  RowSample sample(c.rows, 0);
  for (size_t si = 0; si < c.seqs.size(); ++si) {
    const int32_t n = c.num_new[si];
    const int32_t first = c.first_row[si];
    for (int32_t j = 0; j < n; ++j) {
      if (j < edge || j >= n - edge) sample[first + j] = 1;
    }
    for (int32_t i = 0; i < random; ++i) sample[first + static_cast<int32_t>(rng() % n)] = 1;
  }
  return sample;
}

// Double-precision attention; padding rows and rows outside `sample` are left NaN (not
// compared).
std::vector<float> Reference(const Case& c, const RowSample& sample = {}) {
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
      if (!sample.empty() && !sample[r]) continue;
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
// rows. The output rows start as NaN (a row the kernels skip fails the comparison), and one
// guard row after the last must stay untouched. `workspace_bytes` < 0 gives the op what
// AttentionWorkspaceBytes asks for.
std::vector<float> RunAttention(const Case& c, int32_t max_num_new = 0, int32_t max_context = 0,
                                int64_t workspace_bytes = -1,
                                PrefillPath prefill = PrefillPath::kAuto) {
  DeviceCase dev(c);
  const DeviceStep step = dev.Step(c, max_num_new > 0 ? max_num_new : c.max_num_new,
                                   max_context > 0 ? max_context : c.max_context);
  const size_t ws_bytes = workspace_bytes < 0 ? AttentionWorkspaceBytes(step, c.shape)
                                              : static_cast<size_t>(workspace_bytes);
  DeviceArray<uint8_t> ws(ws_bytes);
  const size_t out_elems = static_cast<size_t>(c.rows) * c.out_width();
  std::vector<bf16> poisoned(out_elems + c.out_width(), testing::FloatToBf16(kGuard));
  std::fill(poisoned.begin(), poisoned.begin() + static_cast<std::ptrdiff_t>(out_elems),
            testing::FloatToBf16(std::numeric_limits<float>::quiet_NaN()));
  DeviceArray<bf16> out(poisoned);
  Attention(dev.q.get(), c.q_stride, dev.k_cache.get(), dev.v_cache.get(), step, c.shape, ws.get(),
            ws_bytes, out.get(), /*stream=*/nullptr, prefill);
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

// Compares every non-padding row (of `sample`, when given). Decode rows (fp32 throughout)
// element by element: |got - want| <= 1e-2 |want| + 1e-4. Prefill rows per (row, head), as
// norms: ||got - want|| <= 1e-2 ||want|| + 1e-4, since the tensor-core kernel rounds the
// softmax weights to bf16 for the P V product (a relative error of ~2^-9 per weight, which
// an element-wise bound fails wherever an output element is a near-cancelling sum). A NaN
// anywhere fails.
void ExpectMatches(const Case& c, const std::vector<float>& got, const std::vector<float>& want,
                   const std::string& what, const RowSample& sample = {}) {
  const int32_t width = c.out_width();
  const int32_t d = c.shape.head_dim;
  int64_t bad = 0;
  int64_t compared = 0;
  double worst = 0;   // decode: worst absolute error; prefill: worst relative norm error
  double err_sq = 0;  // over all compared elements
  double want_sq = 0;
  std::string first;
  auto where = [&](int32_t r, int32_t h) {
    return "row " + std::to_string(r) + " (seq " + std::to_string(c.row_seq[r]) + " of " +
           std::to_string(c.seqs.size()) + ", num_new " + std::to_string(c.num_new[c.row_seq[r]]) +
           ", num_cached " + std::to_string(c.num_cached[c.row_seq[r]]) + ", position " +
           std::to_string(c.positions[r]) + ") head " + std::to_string(h);
  };
  for (int32_t r = 0; r < c.rows; ++r) {
    if (c.slots[r] < 0) continue;  // padding row: may hold anything
    if (!sample.empty() && !sample[r]) continue;
    ++compared;
    const bool prefill = c.num_new[c.row_seq[r]] > 1;
    for (int32_t h = 0; h < c.shape.num_q_heads; ++h) {
      double head_err_sq = 0;
      double head_want_sq = 0;
      for (int32_t i = 0; i < d; ++i) {
        const size_t at = static_cast<size_t>(r) * width + static_cast<size_t>(h) * d + i;
        const double diff = static_cast<double>(got[at]) - want[at];
        head_err_sq += diff * diff;
        head_want_sq += static_cast<double>(want[at]) * want[at];
        if (prefill) continue;
        const double err = std::abs(diff);
        const double tol = 1e-2 * std::abs(want[at]) + 1e-4;
        if (!(err <= tol)) {
          if (bad++ == 0) {
            first = where(r, h) + " dim " + std::to_string(i) + ": got " + std::to_string(got[at]) +
                    " want " + std::to_string(want[at]);
          }
          worst = std::isnan(err) ? err : std::max(worst, err);
        }
      }
      err_sq += head_err_sq;
      want_sq += head_want_sq;
      if (!prefill) continue;
      const double err = std::sqrt(head_err_sq);
      const double norm = std::sqrt(head_want_sq);
      if (!(err <= 1e-2 * norm + 1e-4)) {
        if (bad++ == 0) {
          size_t at = static_cast<size_t>(r) * width + static_cast<size_t>(h) * d;
          first = where(r, h) + ": ||got - want|| / ||want|| = " + std::to_string(err / norm) +
                  ", dim 0 got " + std::to_string(got[at]) + " want " + std::to_string(want[at]);
        }
        worst = std::isnan(err) ? err : std::max(worst, err / norm);
      }
    }
  }
  EXPECT_GT(compared, 0) << what << ": no row compared";
  EXPECT_EQ(bad, 0) << what << ": " << bad << " mismatches (decode: elements; prefill: (row, "
                    << "head) vectors) in " << compared << " rows, first " << first
                    << ", worst error " << worst
                    << "; overall ||got - want|| / ||want|| = " << std::sqrt(err_sq / want_sq);
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

}  // namespace
}  // namespace sluice::llm::cuda

#pragma once
// The paged-attention tests' cases and reference (attention_kernel_test.cc,
// decode_attention_test.cc): a step's sequences laid out in rows with shuffled block tables,
// K/V caches that hold NaN everywhere but the sequences' contexts (a read outside a context
// shows up as a NaN in its output), a double-precision CPU reference, the step on the device,
// Attention() run with a poisoned output and a guard row, and the comparison.

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

namespace sluice::llm::cuda::attention_test {

using testing::DeviceArray;
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

inline AttentionShape MakeShape(int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                                float sharpness = 1.f) {
  return {q_heads, kv_heads, head_dim, sharpness / std::sqrt(static_cast<float>(head_dim))};
}

// Lays the sequences out in rows, gives them blocks from a shuffled pool of at least
// `min_blocks` blocks, and block tables padded to at least `table_capacity` entries (fixed
// sizes let a graph test upload a second case into the same device arrays).
inline Case MakeCase(std::mt19937_64& rng, const AttentionShape& shape, int32_t block_size,
                     const std::vector<Seq>& seqs, int32_t min_blocks = 0,
                     int32_t table_capacity = 0) {
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
inline RowSample SampleRows(std::mt19937_64& rng, const Case& c, int32_t edge, int32_t random) {
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
inline std::vector<float> Reference(const Case& c, const RowSample& sample = {}) {
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

inline constexpr float kGuard = 12288.f;  // exactly representable in bf16 (3 * 2^12)

// Runs Attention with the given grid bounds (0: the case's own maxima) and returns the output
// rows. The output rows start as NaN (a row the kernels skip fails the comparison), and one
// guard row after the last must stay untouched. `workspace_bytes` < 0 gives the op what
// AttentionWorkspaceBytes asks for.
inline std::vector<float> RunAttention(const Case& c, int32_t max_num_new = 0,
                                       int32_t max_context = 0, int64_t workspace_bytes = -1,
                                       PrefillPath prefill = PrefillPath::kAuto) {
  DeviceCase dev(c);
  const DeviceStep step = dev.Step(c, max_num_new > 0 ? max_num_new : c.max_num_new,
                                   max_context > 0 ? max_context : c.max_context);
  const size_t ws_bytes = workspace_bytes < 0 ? AttentionWorkspaceBytes(step, c.shape)
                                              : static_cast<size_t>(workspace_bytes);
  DeviceArray<uint8_t> ws(std::vector<uint8_t>(ws_bytes, 0));  // zero: the counters
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
inline void ExpectMatches(const Case& c, const std::vector<float>& got,
                          const std::vector<float>& want, const std::string& what,
                          const RowSample& sample = {}) {
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

inline void Check(const Case& c, const std::string& what) {
  ExpectMatches(c, RunAttention(c), Reference(c), what);
}

inline std::string Describe(const Case& c) {
  return "q_heads " + std::to_string(c.shape.num_q_heads) + " kv_heads " +
         std::to_string(c.shape.num_kv_heads) + " head_dim " + std::to_string(c.shape.head_dim) +
         " block_size " + std::to_string(c.block_size) + " seqs " + std::to_string(c.seqs.size()) +
         " rows " + std::to_string(c.rows);
}

// Qwen2-7B: 28 q heads, 4 kv heads (GQA 7), head_dim 128.
inline const AttentionShape kQwen7b = MakeShape(28, 4, 128);

}  // namespace sluice::llm::cuda::attention_test

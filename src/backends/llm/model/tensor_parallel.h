#pragma once

// Megatron-style tensor parallelism over the ranks of one model (issue 7). Rank r of n holds
// its share of the attention heads (q heads [r * q, (r + 1) * q), their kv heads, and their
// slice of the KV cache) and of the MLP's columns; q/k/v and gate/up are split by output
// rows (column-parallel), o_proj and down_proj by input columns (row-parallel), so each
// rank's o and down outputs are partial sums that one all-reduce per layer half completes.
// Embedding, norms and the LM head are whole on every rank. With fewer kv heads than ranks
// the kv heads are replicated: each rank keeps the one its q heads read.

#include <cstdint>

#include "backends/llm/device/ops.h"
#include "backends/llm/model/hf_config.h"
#include "common/status.h"

namespace sluice::llm {

struct TpLayout {
  int32_t rank = 0, size = 1;
  int32_t q_heads = 0, q_head_first = 0;    // this rank's query heads
  int32_t kv_heads = 0, kv_head_first = 0;  // the kv heads they read
  int32_t inter = 0, inter_first = 0;       // this rank's MLP columns
};

// The layout of `rank` of `size` for a model, or InvalidArgument when the model does not
// split that way (heads, kv heads or MLP width not divisible).
Result<TpLayout> MakeTpLayout(const HfModelConfig& config, int32_t rank, int32_t size);

// Rows [first, first + count) of a row-major [*, cols] tensor: a view of the same memory.
WeightSource SliceRows(const WeightSource& w, int64_t cols, int64_t first, int64_t count);

// Columns [first, first + count) of a row-major [rows, cols] tensor, copied into memory the
// result keeps alive (a rank's part of a row-parallel weight is not contiguous in the file).
WeightSource SliceColumns(const WeightSource& w, int64_t rows, int64_t cols, int64_t first,
                          int64_t count);

}  // namespace sluice::llm

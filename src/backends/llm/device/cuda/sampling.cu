// Token sampling on the GPU (kernels.h, "Sampling"): one thread block per logits row runs the
// CPU sampler's steps (engine/sampler.cc) in the same order and float arithmetic, without
// sorting the vocabulary.
//
// Per row:
//  1. Max, argmax and sum of exp of the raw row: the raw logprob and the all-masked fallback.
//     RowStatsKernel computes them first over many blocks per row (one block reading a
//     150k-token row keeps too few loads in flight: bench/RESULTS.md, issue 6 session 4),
//     and the row's block merges the partials. A greedy row without penalty entries is then
//     decided: its token is the raw argmax, and RowStatsKernel has also done its step 6.
//  2. Penalty entries: the raw value goes to the workspace (the logprob needs it later), the
//     penalised value is written in place. Every other token is its raw value (NaN = -inf).
//  3. Max and argmax of the penalised row; greedy rows stop here.
//  4. Masks become one lower bound on an order-preserving uint32 key of the temperature-scaled
//     value (plus, for top_p only, a cut-off index among tokens tied at the bound). min_p
//     gives the bound directly; top_k and top_p raise it by radix select: four passes of
//     8-bit digits with shared-memory histograms of counts (top_k) or of fixed-point
//     probability mass (top_p). Scaled values are recomputed on the fly in every pass.
//     (sampling_select.cuh)
//  5. One draw by inverse CDF in index order: each warp sums a contiguous segment, thread 0
//     picks the segment holding u * total, that warp walks it 32 tokens at a time.
//     (sampling_draw.cuh, with the random numbers)
//  6. The processed values are written in place, the logprob from the raw value.
//
// The building blocks (constants, keys, row walks, block reductions, the shared per-row
// state) are sampling_block.cuh's.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/sampling_block.cuh"
#include "backends/llm/device/cuda/sampling_draw.cuh"
#include "backends/llm/device/cuda/sampling_select.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace sampling_block;  // NOLINT: sampling.cu is the headers' only user

// --- Step 1 over many blocks ---

// Tokens per RowStatsKernel block: one pass of kRun a thread, more for vocabularies past
// kThreads such chunks, so that the row's block merges at most one partial a thread.
__host__ __device__ inline int32_t StatsChunk(int32_t vocab) {
  const int32_t one_pass = kThreads * kRun;
  const int32_t by_threads = ((vocab + kThreads - 1) / kThreads + kRun - 1) / kRun * kRun;
  return by_threads > one_pass ? by_threads : one_pass;
}
__host__ __device__ inline int32_t StatsParts(int32_t vocab) {
  const int32_t chunk = StatsChunk(vocab);
  return (vocab + chunk - 1) / chunk;
}

// A greedy row without penalty entries needs nothing but step 1 (its token is the raw
// argmax, NaN never wins), so RowStatsKernel finishes it.
__device__ __forceinline__ bool DecidedByStats(const SamplingRow& p) {
  return p.temperature < kGreedyEpsilon && p.penalty_count == 0;
}

struct StatsArgs {
  float* logits;
  int32_t vocab;
  const SamplingRow* rows;
  Lse* lse;    // [num_rows, StatsParts(vocab)]
  Best* best;  // [num_rows, StatsParts(vocab)]
};

// Block (row, part): step 1 over the part's chunk of the row; for a row DecidedByStats, also
// its step 6 (NaN becomes -inf) on that chunk.
__global__ void __launch_bounds__(kThreads) RowStatsKernel(StatsArgs a) {
  const int32_t vocab = a.vocab;
  const int32_t chunk = StatsChunk(vocab);
  const int32_t begin = blockIdx.y * chunk;
  const int32_t end = min(vocab, begin + chunk);
  float* row = a.logits + static_cast<size_t>(blockIdx.x) * vocab;
  const bool finish = DecidedByStats(a.rows[blockIdx.x]);
  Lse lse{kNegInf, 0.0};
  Best best{kNegInf, kNone};
  ForEachInRange(row, begin, end, [&](int32_t i, float v) {
    if (isnan(v)) {
      if (finish) row[i] = kNegInf;
      return;
    }
    if (best.i == kNone || v > best.v) best = {v, i};
    if (v > lse.m) {
      lse.s = lse.s * exp(static_cast<double>(lse.m) - static_cast<double>(v)) + 1.0;
      lse.m = v;
    } else if (v > kNegInf) {
      lse.s += static_cast<double>(expf(v - lse.m));
    }
  });
  lse = BlockAllReduce(lse, LseOp{});
  best = BlockAllReduce(best, BetterOp{});
  if (threadIdx.x == 0) {
    const size_t at = static_cast<size_t>(blockIdx.x) * gridDim.y + blockIdx.y;
    a.lse[at] = lse;
    a.best[at] = best;
  }
}

struct SampleArgs {
  float* logits;
  int32_t vocab;
  const SamplingRow* rows;
  const int32_t* penalty_tokens;
  const PenaltyInfo* penalty_info;
  float* raw_stash;  // [num_rows, vocab]: raw values of penalty entries
  const Lse* lse;    // RowStatsKernel's partials
  const Best* best;
  int32_t* tokens;
  float* logprobs;
};

// The log-probability of raw under the raw row's statistics: -inf for a NaN token or a row
// without a finite value.
__device__ __forceinline__ float Logprob(float raw, Lse lse) {
  float logprob = kNegInf;
  if (isfinite(lse.m) && !isnan(raw)) {
    const double log_z = static_cast<double>(lse.m) + log(lse.s);
    logprob = static_cast<float>(static_cast<double>(raw) - log_z);
  }
  return logprob;
}

// Step 1 for the block's row: log-sum-exp and the CPU's NaN-aware argmax (all NaN: the last
// index), merged from RowStatsKernel's partials.
__device__ __forceinline__ void MergeRowStats(const SampleArgs& a, int32_t vocab, Lse* lse,
                                              Best* raw_best) {
  const int32_t parts = StatsParts(vocab);
  Lse l{kNegInf, 0.0};
  Best b{kNegInf, kNone};
  if (static_cast<int32_t>(threadIdx.x) < parts) {
    l = a.lse[static_cast<size_t>(blockIdx.x) * parts + threadIdx.x];
    b = a.best[static_cast<size_t>(blockIdx.x) * parts + threadIdx.x];
  }
  *lse = BlockAllReduce(l, LseOp{});
  *raw_best = BlockAllReduce(b, BetterOp{});
}

// Step 2: penalties, in the CPU's order and float operations (no contraction into FMAs). The
// raw value of each entry goes to the stash, the penalised one into the row.
__device__ __forceinline__ void ApplyPenalties(const SampleArgs& a, const SamplingRow& p,
                                               int32_t vocab, float* row, float* stash) {
  const bool repetition = p.repetition_penalty != 1.0f;
  const bool frequency = p.frequency_penalty != 0.0f || p.presence_penalty != 0.0f;
  for (int32_t j = threadIdx.x; j < p.penalty_count; j += kThreads) {
    const int64_t e = static_cast<int64_t>(p.penalty_begin) + j;
    const int32_t t = a.penalty_tokens[e];
    if (t < 0 || t >= vocab) continue;
    const PenaltyInfo info = a.penalty_info[e];
    const float raw = row[t];
    stash[t] = raw;
    float v = isnan(raw) ? kNegInf : raw;
    if (info.suppressed) v = kNegInf;
    if (repetition && info.seen) {
      v = v > 0 ? __fdiv_rn(v, p.repetition_penalty) : __fmul_rn(v, p.repetition_penalty);
    }
    if (frequency && info.output_count > 0) {
      const float penalty =
          __fadd_rn(__fmul_rn(p.frequency_penalty, static_cast<float>(info.output_count)),
                    p.presence_penalty);
      v = __fsub_rn(v, penalty);
    }
    row[t] = v;
  }
}

// Step 3: the penalised row's argmax (ties to the lower index).
__device__ __forceinline__ Best PenalisedArgmax(const float* row, int32_t vocab) {
  Best pen{kNegInf, kNone};
  ForEachInRow(row, vocab, [&](int32_t i, float v) {
    if (isnan(v)) v = kNegInf;
    if (pen.i == kNone || v > pen.v) pen = {v, i};
  });
  return BlockAllReduce(pen, BetterOp{});
}

// Step 4: the masks as a lower bound on the scaled keys (and the cut-off among the tokens tied
// at it). Scaling is monotone, so the scaled max s_max is the penalised max scaled.
__device__ __forceinline__ void MaskBounds(const float* row, int32_t vocab, const SamplingRow& p,
                                           float inv_t, float s_max, uint32_t* lower, int32_t* cut,
                                           RowShared& sh) {
  if (p.min_p > 0) {
    const float threshold = __fadd_rn(s_max, static_cast<float>(log(static_cast<double>(p.min_p))));
    *lower = max(*lower, OrderedKey(threshold));  // v < threshold goes
  }
  if (p.top_k > 0) {
    *lower = TopKBound(row, vocab, inv_t, *lower, static_cast<uint32_t>(p.top_k), sh);
  }
  if (p.top_p < 1.0f) TopPBound(row, vocab, inv_t, s_max, p.top_p, lower, cut, sh);
}

// Step 6, first half: the token and its logprob from the raw value (a penalty entry's is in
// the stash). Ends with a barrier: row[token] is read before the row is overwritten.
__device__ __forceinline__ void WriteToken(const SampleArgs& a, const SamplingRow& p,
                                           const float* row, const float* stash, int32_t token,
                                           Lse lse, RowShared& sh) {
  if (threadIdx.x == 0) sh.token_raw = row[token];
  __syncthreads();
  for (int32_t j = threadIdx.x; j < p.penalty_count; j += kThreads) {
    const int64_t e = static_cast<int64_t>(p.penalty_begin) + j;
    if (a.penalty_tokens[e] == token) sh.token_raw = stash[token];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float logprob = Logprob(sh.token_raw, lse);
    a.tokens[blockIdx.x] = token;
    a.logprobs[blockIdx.x] = logprob;
  }
  __syncthreads();
}

// Step 6, second half: the processed values in place (scaled, masked tokens -inf; greedy
// rows only lose their NaNs).
__device__ __forceinline__ void WriteProcessedRow(float* row, int32_t vocab, bool greedy,
                                                  float inv_t, uint32_t lower, int32_t cut) {
  ForEachInRow(row, vocab, [&](int32_t i, float v) {
    if (greedy) {
      if (isnan(v)) row[i] = kNegInf;
    } else {
      const float s = Scaled(v, inv_t);
      row[i] = Kept(i, OrderedKey(s), lower, cut) ? s : kNegInf;
    }
  });
}

__global__ void __launch_bounds__(kThreads, 1) SampleKernel(SampleArgs a) {
  __shared__ RowShared sh;
  if (a.raw_stash == nullptr) __trap();  // workspace smaller than SamplingWorkspaceBytes
  const int32_t vocab = a.vocab;
  const SamplingRow p = a.rows[blockIdx.x];
  float* row = a.logits + static_cast<size_t>(blockIdx.x) * vocab;
  float* stash = a.raw_stash + static_cast<size_t>(blockIdx.x) * vocab;

  Lse lse;
  Best raw_best;
  MergeRowStats(a, vocab, &lse, &raw_best);
  const int32_t fallback = raw_best.i == kNone ? vocab - 1 : raw_best.i;
  if (DecidedByStats(p)) {
    // Steps 2-5 change nothing and RowStatsKernel did step 6; a NaN it replaced can only be
    // the all-NaN fallback token, whose logprob is -inf either way (lse.m is -inf).
    if (threadIdx.x == 0) {
      const float logprob = Logprob(row[fallback], lse);
      a.tokens[blockIdx.x] = fallback;
      a.logprobs[blockIdx.x] = logprob;
    }
    return;
  }
  ApplyPenalties(a, p, vocab, row, stash);
  __syncthreads();
  const Best pen = PenalisedArgmax(row, vocab);

  const bool greedy = p.temperature < kGreedyEpsilon;
  float inv_t = 1.0f;
  uint32_t lower = kFiniteFloor;
  int32_t cut = kNone;
  int32_t token = 0;
  if (greedy) {
    token = pen.v > kNegInf ? pen.i : fallback;
  } else {
    inv_t = __fdiv_rn(1.0f, p.temperature);
    const float s_max = __fmul_rn(pen.v, inv_t);
    if (s_max > kNegInf) MaskBounds(row, vocab, p, inv_t, s_max, &lower, &cut, sh);
    // 5. The draw.
    token = Draw(row, vocab, inv_t, s_max, lower, cut, p.seed, p.offset, fallback, sh);
  }
  WriteToken(a, p, row, stash, token, lse, sh);
  WriteProcessedRow(row, vocab, greedy, inv_t, lower, cut);
}

// Workspace: the raw stash [num_rows, vocab] floats, then RowStatsKernel's Lse and Best
// partials [num_rows, StatsParts(vocab)] each, every region 256-byte aligned.
size_t AlignUp(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}
size_t StashBytes(int32_t num_rows, int32_t vocab) {
  return AlignUp(static_cast<size_t>(num_rows) * static_cast<size_t>(vocab) * sizeof(float));
}
size_t PartialCount(int32_t num_rows, int32_t vocab) {
  return static_cast<size_t>(num_rows) * static_cast<size_t>(StatsParts(vocab));
}

}  // namespace

size_t SamplingWorkspaceBytes(int32_t num_rows, int32_t vocab) {
  if (num_rows <= 0 || vocab <= 0) return 0;
  const size_t parts = PartialCount(num_rows, vocab);
  return StashBytes(num_rows, vocab) + AlignUp(parts * sizeof(Lse)) + parts * sizeof(Best);
}

void Sample(float* logits, int32_t num_rows, int32_t vocab, const SamplingRow* rows,
            const int32_t* penalty_tokens, const PenaltyInfo* penalty_info, void* workspace,
            size_t workspace_bytes, int32_t* tokens, float* logprobs, cudaStream_t stream) {
  if (num_rows <= 0 || vocab <= 0) return;
  SampleArgs args{};
  args.logits = logits;
  args.vocab = vocab;
  args.rows = rows;
  args.penalty_tokens = penalty_tokens;
  args.penalty_info = penalty_info;
  // A workspace that is too small is a caller bug: the kernel traps, which surfaces as a
  // launch failure at the next synchronisation (no host check can report it graph-safely).
  const bool fits = workspace_bytes >= SamplingWorkspaceBytes(num_rows, vocab);
  auto* base = static_cast<std::byte*>(workspace);
  const size_t parts = PartialCount(num_rows, vocab);
  Lse* lse = reinterpret_cast<Lse*>(base + StashBytes(num_rows, vocab));
  Best* best =
      reinterpret_cast<Best*>(reinterpret_cast<std::byte*>(lse) + AlignUp(parts * sizeof(Lse)));
  args.raw_stash = fits ? static_cast<float*>(workspace) : nullptr;
  args.lse = lse;
  args.best = best;
  args.tokens = tokens;
  args.logprobs = logprobs;
  if (fits) {
    const dim3 stats_grid(static_cast<unsigned>(num_rows),
                          static_cast<unsigned>(StatsParts(vocab)));
    RowStatsKernel<<<stats_grid, kThreads, 0, stream>>>(StatsArgs{logits, vocab, rows, lse, best});
  }
  SampleKernel<<<num_rows, kThreads, 0, stream>>>(args);
}

}  // namespace sluice::llm::cuda

// Token sampling on the GPU (kernels.h, "Sampling"): one thread block per logits row runs the
// CPU sampler's steps (engine/sampler.cc) in the same order and float arithmetic, without
// sorting the vocabulary.
//
// Per row:
//  1. Max, argmax and sum of exp of the raw row: the raw logprob and the all-masked fallback.
//     RowStatsKernel computes them first over many blocks per row (one block reading a
//     150k-token row keeps too few loads in flight: ~40 us a pass on an H100), and the row's
//     block merges the partials. A greedy row without penalty entries is then decided:
//     its token is the raw argmax, and RowStatsKernel has also done its step 6.
//  2. Penalty entries: the raw value goes to the workspace (the logprob needs it later), the
//     penalised value is written in place. Every other token is its raw value (NaN = -inf).
//  3. Max and argmax of the penalised row; greedy rows stop here.
//  4. Masks become one lower bound on an order-preserving uint32 key of the temperature-scaled
//     value (plus, for top_p only, a cut-off index among tokens tied at the bound). min_p
//     gives the bound directly; top_k and top_p raise it by radix select: four passes of
//     8-bit digits with shared-memory histograms of counts (top_k) or of fixed-point
//     probability mass (top_p). Scaled values are recomputed on the fly in every pass.
//  5. One draw by inverse CDF in index order: each warp sums a contiguous segment, thread 0
//     picks the segment holding u * total, that warp walks it 32 tokens at a time.
//  6. The processed values are written in place, the logprob from the raw value.
//
// Random numbers: Philox4x32-10 keyed by the row's seed, counter = the row's offset (curand
// subsequence 0, element offset 4 * offset, so draw n of a sequence uses Philox block n
// whatever the batch). u = the top 53 bits of the block's first two 32-bit words / 2^53.

#include <curand_kernel.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "backends/llm/device/cuda/kernels.h"
#include "backends/llm/device/cuda/sampling_block.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace sampling_block;  // NOLINT: sampling.cu is the header's only user

// --- Radix select ---

struct Histograms {
  uint32_t count[kBins];
  unsigned long long mass[kBins];
};

// Histogram of the digit at `shift` over tokens whose key is >= lower and has `prefix` in
// the bits of `mask`. Starts and ends with a barrier.
template <bool kWithMass>
__device__ void BuildHistogram(const float* row, int32_t vocab, float inv_t, float s_max,
                               uint32_t lower, uint32_t prefix, uint32_t mask, int shift,
                               Histograms& h) {
  __syncthreads();  // earlier readers of the bins are done
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    h.count[b] = 0;
    h.mass[b] = 0;
  }
  __syncthreads();
  for (int32_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float s = Scaled(row[i], inv_t);
    const uint32_t key = OrderedKey(s);
    if (key < lower || (key & mask) != prefix) continue;
    const uint32_t d = (key >> shift) & (kBins - 1);
    atomicAdd(&h.count[d], 1u);
    if constexpr (kWithMass) atomicAdd(&h.mass[d], FixedMass(s, s_max));
  }
  __syncthreads();
}

// Lane l of a warp holds bins 255 - 8l - j, j = 0..7: lane order is descending key order.
__device__ __forceinline__ int LaneBin(int lane, int j) { return kBins - 1 - 8 * lane - j; }

template <typename T>
__device__ __forceinline__ T LaneBinSum(const T* hist) {
  const int lane = threadIdx.x & 31;
  T sum = 0;
  for (int j = 0; j < 8; ++j) sum += hist[LaneBin(lane, j)];
  return sum;
}

template <typename T>
struct Digit {
  bool found;
  uint32_t digit;
  T above;  // sum of the bins above `digit`
};

// One full warp: the digit d with above(d) < rank <= above(d) + hist[d], i.e. the bin holding
// the rank-th largest (by count or by mass, 1-based). Every lane gets the result.
template <typename T>
__device__ Digit<T> SelectDigit(const T* hist, T rank) {
  static_assert(kBins == 8 * 32, "one warp, 8 bins a lane");
  const int lane = threadIdx.x & 31;
  const T sum = LaneBinSum(hist);
  const T incl = WarpInclusiveSum(sum);
  const T excl = incl - sum;
  const unsigned hit = __ballot_sync(kFullMask, excl < rank && rank <= incl);
  if (hit == 0) return {false, 0, 0};
  const int owner = __ffs(hit) - 1;
  uint32_t digit = 0;
  T above = excl;
  if (lane == owner) {
    for (int j = 0; j < 8; ++j) {
      const int b = LaneBin(lane, j);
      if (above + hist[b] >= rank) {
        digit = static_cast<uint32_t>(b);
        break;
      }
      above += hist[b];
    }
  }
  return {true, __shfl_sync(kFullMask, digit, owner), __shfl_sync(kFullMask, above, owner)};
}

// Per-row state shared by the steps below.
struct RowShared {
  Histograms h;
  // Radix select broadcast from warp 0.
  bool sel_found;
  bool sel_stop;
  uint32_t sel_digit;
  uint32_t sel_count_above;
  unsigned long long sel_mass_above;
  unsigned long long sel_rank;  // top_p: the target mass, in fixed point
  // Segment walks (draw, tie cut-off).
  double seg_mass[kWarps];
  int32_t seg_last[kWarps];
  uint32_t seg_count[kWarps];
  int32_t walk_warp;
  double walk_base;
  double walk_target;
  uint32_t walk_need;
  int32_t result;
  float token_raw;
};

// top_k: the key of the k-th largest candidate (key >= lower), counted with multiplicity; every
// candidate at least as large stays (ties kept, as the CPU). Returns the new lower bound.
__device__ uint32_t TopKBound(const float* row, int32_t vocab, float inv_t, uint32_t lower,
                              uint32_t k, RowShared& sh) {
  const int warp = threadIdx.x >> 5;
  uint32_t prefix = 0;
  uint32_t mask = 0;
  uint32_t rank = k;
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = 32 - kDigitBits * (pass + 1);
    BuildHistogram<false>(row, vocab, inv_t, 0.f, lower, prefix, mask, shift, sh.h);
    if (warp == 0) {
      // Pass 0 sees every candidate: top_k only applies when k < their number.
      const bool skip = pass == 0 && k >= WarpAllReduce(LaneBinSum(sh.h.count), AddOp{});
      const Digit<uint32_t> d = skip ? Digit<uint32_t>{false, 0, 0} : SelectDigit(sh.h.count, rank);
      if ((threadIdx.x & 31) == 0) {
        sh.sel_found = d.found;
        sh.sel_digit = d.digit;
        sh.sel_count_above = d.above;
      }
    }
    __syncthreads();
    if (!sh.sel_found) return lower;
    const uint32_t d = sh.sel_digit;
    rank -= sh.sel_count_above;
    prefix |= d << shift;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
    // Once every candidate of the chosen bin stays, the bin's low end is the bound: the same
    // set as the exact k-th key, fewer passes.
    if (sh.h.count[d] == rank || pass == kPasses - 1) return max(lower, prefix);
  }
  return lower;
}

// Index of the n-th (1-based, index order) token whose scaled key is `key`; kNone if fewer.
__device__ int32_t NthWithKey(const float* row, int32_t vocab, float inv_t, uint32_t key,
                              uint32_t n, RowShared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const auto [seg_begin, seg_end] = WarpSegment(vocab, warp);
  uint32_t count = 0;
  for (int32_t base = seg_begin; base < seg_end; base += 32) {
    const int32_t i = base + lane;
    const bool match = i < seg_end && OrderedKey(Scaled(row[i], inv_t)) == key;
    count += __popc(__ballot_sync(kFullMask, match));
  }
  __syncthreads();  // earlier users of the segment arrays are done
  if (lane == 0) sh.seg_count[warp] = count;
  __syncthreads();
  if (threadIdx.x == 0) {
    sh.walk_warp = -1;
    sh.result = kNone;
    uint32_t acc = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (acc + sh.seg_count[w] >= n) {
        sh.walk_warp = w;
        sh.walk_need = n - acc;
        break;
      }
      acc += sh.seg_count[w];
    }
  }
  __syncthreads();
  if (warp == sh.walk_warp) {
    uint32_t seen = 0;
    const uint32_t need = sh.walk_need;
    for (int32_t base = seg_begin; base < seg_end; base += 32) {
      const int32_t i = base + lane;
      const bool match = i < seg_end && OrderedKey(Scaled(row[i], inv_t)) == key;
      unsigned bits = __ballot_sync(kFullMask, match);
      const uint32_t c = __popc(bits);
      if (seen + c >= need) {
        for (uint32_t t = seen + 1; t < need; ++t) bits &= bits - 1;  // drop earlier matches
        if (lane == 0) sh.result = base + __ffs(bits) - 1;
        break;
      }
      seen += c;
    }
  }
  __syncthreads();
  return sh.result;
}

// top_p, the CPU's rule: in descending order (ties by lower index) a token stays iff the
// tokens ranked above it hold less than top_p of the kept mass. Radix select by mass finds
// the boundary key T (mass above T < target <= mass at or above T); of the tokens tied at T
// the lowest-index ones stay while the mass before them is below the target.
__device__ void TopPBound(const float* row, int32_t vocab, float inv_t, float s_max,
                          float top_p, uint32_t* lower, int32_t* cut, RowShared& sh) {
  const int warp = threadIdx.x >> 5;
  uint32_t prefix = 0;
  uint32_t mask = 0;
  unsigned long long rank = 0;
  for (int pass = 0; pass < kPasses; ++pass) {
    const int shift = 32 - kDigitBits * (pass + 1);
    BuildHistogram<true>(row, vocab, inv_t, s_max, *lower, prefix, mask, shift, sh.h);
    if (warp == 0) {
      bool stop = false;
      unsigned long long r = sh.sel_rank;
      if (pass == 0) {
        const uint32_t kept = WarpAllReduce(LaneBinSum(sh.h.count), AddOp{});
        const unsigned long long total = WarpAllReduce(LaneBinSum(sh.h.mass), AddOp{});
        stop = kept <= 1;  // as the CPU: nothing to do for one candidate
        const double target = static_cast<double>(top_p) * static_cast<double>(total);
        // Masses are integers: mass < target <=> mass < ceil(target).
        r = target > 0 ? static_cast<unsigned long long>(ceil(target)) : 0ull;
        if (r > total) r = total;
      }
      const Digit<unsigned long long> d =
          stop || r == 0 ? Digit<unsigned long long>{false, 0, 0} : SelectDigit(sh.h.mass, r);
      if ((threadIdx.x & 31) == 0) {
        sh.sel_stop = stop;
        sh.sel_rank = r;
        sh.sel_found = d.found;
        sh.sel_digit = d.digit;
        sh.sel_mass_above = d.above;
      }
    }
    __syncthreads();
    if (sh.sel_stop) return;
    if (!sh.sel_found) {
      // Only a target of zero (top_p <= 0): the CPU then keeps nothing.
      if (pass == 0 && sh.sel_rank == 0) *lower = kMaskAll;
      return;
    }
    const uint32_t d = sh.sel_digit;
    rank = sh.sel_rank - sh.sel_mass_above;  // what the bin must still supply
    prefix |= d << shift;
    mask |= static_cast<uint32_t>(kBins - 1) << shift;
    const uint32_t in_bin = sh.h.count[d];
    const unsigned long long bin_mass = sh.h.mass[d];
    __syncthreads();  // everyone has read sel_* before warp 0 writes them again
    if (threadIdx.x == 0) sh.sel_rank = rank;
    if (in_bin == 1) {  // the bin's one token stays, everything below goes
      *lower = max(*lower, prefix);
      return;
    }
    if (pass == kPasses - 1) {
      // `prefix` is T; its in_bin ties all carry bin_mass / in_bin. Tie i (0-based, index
      // order) stays iff mass_above + i * each < target, i.e. i < rank / each.
      const unsigned long long each = bin_mass / in_bin;
      const unsigned long long keep = (rank + each - 1) / each;
      *lower = max(*lower, prefix);
      if (keep < in_bin) *cut = NthWithKey(row, vocab, inv_t, prefix, static_cast<uint32_t>(keep), sh);
      return;
    }
  }
}

__device__ double UniformDraw(uint64_t seed, uint64_t offset) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, /*subsequence=*/0, /*offset=*/offset * 4, &state);
  const uint4 x = curand4(&state);
  const uint64_t bits = ((static_cast<uint64_t>(x.x) << 32) | x.y) >> 11;
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);  // 2^-53
}

// One categorical draw over the kept tokens, as the CPU: the first token, in index order,
// whose cumulative mass exceeds u * total; the last kept token if rounding leaves none; the
// fallback if nothing is kept.
__device__ int32_t Draw(const float* row, int32_t vocab, float inv_t, float s_max,
                        uint32_t lower, int32_t cut, uint64_t seed, uint64_t offset,
                        int32_t fallback, RowShared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const auto [seg_begin, seg_end] = WarpSegment(vocab, warp);
  double mass = 0;
  int32_t last = -1;
  for (int32_t i = seg_begin + lane; i < seg_end; i += 32) {
    const float s = Scaled(row[i], inv_t);
    if (Kept(i, OrderedKey(s), lower, cut)) {
      mass += DrawMass(s, s_max);
      last = i;
    }
  }
  mass = WarpAllReduce(mass, AddOp{});
  last = WarpAllReduce(last, MaxOp{});
  __syncthreads();  // earlier users of the segment arrays are done
  if (lane == 0) {
    sh.seg_mass[warp] = mass;
    sh.seg_last[warp] = last;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0;
    int32_t last_kept = -1;
    for (int w = 0; w < kWarps; ++w) {
      total += sh.seg_mass[w];
      last_kept = max(last_kept, sh.seg_last[w]);
    }
    sh.walk_warp = -1;
    sh.result = last_kept < 0 ? fallback : last_kept;
    if (last_kept >= 0) {
      const double target = UniformDraw(seed, offset) * total;
      double acc = 0;
      for (int w = 0; w < kWarps; ++w) {
        if (sh.seg_mass[w] > 0 && target < acc + sh.seg_mass[w]) {
          sh.walk_warp = w;
          sh.walk_base = acc;
          sh.walk_target = target;
          break;
        }
        acc += sh.seg_mass[w];
      }
    }
  }
  __syncthreads();
  if (warp == sh.walk_warp) {
    // The segment as 32 contiguous sub-ranges, one per lane: each lane sums its own, a warp
    // scan finds the sub-range holding the target, and the warp walks only that one, 32
    // tokens at a time (a walk over the whole segment took tens of microseconds).
    const double target = sh.walk_target;
    const int32_t sub_len = (seg_end - seg_begin + 31) / 32;
    const int32_t sub_begin = min(seg_end, seg_begin + lane * sub_len);
    const int32_t sub_end = min(seg_end, sub_begin + sub_len);
    double sub_mass = 0;
    int32_t sub_last = -1;
    for (int32_t i = sub_begin; i < sub_end; ++i) {
      const float s = Scaled(row[i], inv_t);
      if (Kept(i, OrderedKey(s), lower, cut)) {
        sub_mass += DrawMass(s, s_max);
        sub_last = i;
      }
    }
    const double incl = WarpInclusiveSum(sub_mass) + sh.walk_base;
    const unsigned hit_sub = __ballot_sync(kFullMask, sub_mass > 0 && incl > target);
    // Rounding may leave the target past every sub-range: the segment's last kept token.
    int32_t result = sh.seg_last[warp];
    if (hit_sub != 0) {
      const int w = __ffs(hit_sub) - 1;
      double running = __shfl_sync(kFullMask, incl - sub_mass, w);  // <= target
      const int32_t begin = __shfl_sync(kFullMask, sub_begin, w);
      const int32_t end = __shfl_sync(kFullMask, sub_end, w);
      result = __shfl_sync(kFullMask, sub_last, w);  // if rounding leaves none in the walk
      for (int32_t base = begin; base < end; base += 32) {
        const int32_t i = base + lane;
        double m = 0;
        if (i < end) {
          const float s = Scaled(row[i], inv_t);
          if (Kept(i, OrderedKey(s), lower, cut)) m = DrawMass(s, s_max);
        }
        const double group = WarpInclusiveSum(m);
        const unsigned hit = __ballot_sync(kFullMask, m > 0 && running + group > target);
        if (hit != 0) {
          result = base + __ffs(hit) - 1;
          break;
        }
        running += __shfl_sync(kFullMask, group, 31);
      }
    }
    if (lane == 0) sh.result = result;
  }
  __syncthreads();
  return sh.result;
}

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

__global__ void __launch_bounds__(kThreads, 1) SampleKernel(SampleArgs a) {
  __shared__ RowShared sh;
  if (a.raw_stash == nullptr) __trap();  // workspace smaller than SamplingWorkspaceBytes
  const int32_t vocab = a.vocab;
  const SamplingRow p = a.rows[blockIdx.x];
  float* row = a.logits + static_cast<size_t>(blockIdx.x) * vocab;
  float* stash = a.raw_stash + static_cast<size_t>(blockIdx.x) * vocab;

  // 1. Raw statistics: log-sum-exp and the CPU's NaN-aware argmax (all NaN: the last index),
  // merged from RowStatsKernel's partials.
  const int32_t parts = StatsParts(vocab);
  Lse lse{kNegInf, 0.0};
  Best raw_best{kNegInf, kNone};
  if (static_cast<int32_t>(threadIdx.x) < parts) {
    lse = a.lse[static_cast<size_t>(blockIdx.x) * parts + threadIdx.x];
    raw_best = a.best[static_cast<size_t>(blockIdx.x) * parts + threadIdx.x];
  }
  lse = BlockAllReduce(lse, LseOp{});
  raw_best = BlockAllReduce(raw_best, BetterOp{});
  const int32_t fallback = raw_best.i == kNone ? vocab - 1 : raw_best.i;
  if (DecidedByStats(p)) {
    // Steps 2-5 change nothing and RowStatsKernel did step 6; a NaN it replaced can only be
    // the all-NaN fallback token, whose logprob is -inf either way (lse.m is -inf).
    if (threadIdx.x == 0) {
      const float raw = row[fallback];
      float logprob = kNegInf;
      if (isfinite(lse.m) && !isnan(raw)) {
        logprob = static_cast<float>(static_cast<double>(raw) -
                                     (static_cast<double>(lse.m) + log(lse.s)));
      }
      a.tokens[blockIdx.x] = fallback;
      a.logprobs[blockIdx.x] = logprob;
    }
    return;
  }

  // 2. Penalties, in the CPU's order and float operations (no contraction into FMAs).
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
      const float penalty = __fadd_rn(
          __fmul_rn(p.frequency_penalty, static_cast<float>(info.output_count)),
          p.presence_penalty);
      v = __fsub_rn(v, penalty);
    }
    row[t] = v;
  }
  __syncthreads();

  // 3. Penalised argmax (ties to the lower index).
  Best pen{kNegInf, kNone};
  ForEachInRow(row, vocab, [&](int32_t i, float v) {
    if (isnan(v)) v = kNegInf;
    if (pen.i == kNone || v > pen.v) pen = {v, i};
  });
  pen = BlockAllReduce(pen, BetterOp{});

  const bool greedy = p.temperature < kGreedyEpsilon;
  float inv_t = 1.0f;
  uint32_t lower = kFiniteFloor;
  int32_t cut = kNone;
  int32_t token = 0;
  if (greedy) {
    token = pen.v > kNegInf ? pen.i : fallback;
  } else {
    // 4. Masks. Scaling is monotone, so the scaled max is the penalised max scaled.
    inv_t = __fdiv_rn(1.0f, p.temperature);
    const float s_max = __fmul_rn(pen.v, inv_t);
    if (s_max > kNegInf) {
      if (p.min_p > 0) {
        const float threshold =
            __fadd_rn(s_max, static_cast<float>(log(static_cast<double>(p.min_p))));
        lower = max(lower, OrderedKey(threshold));  // v < threshold goes
      }
      if (p.top_k > 0) {
        lower = TopKBound(row, vocab, inv_t, lower, static_cast<uint32_t>(p.top_k), sh);
      }
      if (p.top_p < 1.0f) TopPBound(row, vocab, inv_t, s_max, p.top_p, &lower, &cut, sh);
    }
    // 5. The draw.
    token = Draw(row, vocab, inv_t, s_max, lower, cut, p.seed, p.offset, fallback, sh);
  }

  // 6. Logprob from the raw value (a penalty entry's is in the stash), then the processed row.
  if (threadIdx.x == 0) sh.token_raw = row[token];
  __syncthreads();
  for (int32_t j = threadIdx.x; j < p.penalty_count; j += kThreads) {
    const int64_t e = static_cast<int64_t>(p.penalty_begin) + j;
    if (a.penalty_tokens[e] == token) sh.token_raw = stash[token];
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float raw = sh.token_raw;
    float logprob = kNegInf;
    if (isfinite(lse.m) && !isnan(raw)) {
      const double log_z = static_cast<double>(lse.m) + log(lse.s);
      logprob = static_cast<float>(static_cast<double>(raw) - log_z);
    }
    a.tokens[blockIdx.x] = token;
    a.logprobs[blockIdx.x] = logprob;
  }
  __syncthreads();  // row[token] is read before it is overwritten
  ForEachInRow(row, vocab, [&](int32_t i, float v) {
    if (greedy) {
      if (isnan(v)) row[i] = kNegInf;
    } else {
      const float s = Scaled(v, inv_t);
      row[i] = Kept(i, OrderedKey(s), lower, cut) ? s : kNegInf;
    }
  });
}


// Workspace: the raw stash [num_rows, vocab] floats, then RowStatsKernel's Lse and Best
// partials [num_rows, StatsParts(vocab)] each, every region 256-byte aligned.
size_t AlignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }
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
    RowStatsKernel<<<stats_grid, kThreads, 0, stream>>>(
        StatsArgs{logits, vocab, rows, lse, best});
  }
  SampleKernel<<<num_rows, kThreads, 0, stream>>>(args);
}

}  // namespace sluice::llm::cuda

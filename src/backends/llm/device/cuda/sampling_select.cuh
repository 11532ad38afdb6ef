#pragma once
// Step 4 of sampling.cu's SampleKernel, the masks: top_k and top_p raise the lower bound on
// the scaled keys by radix select, four passes of 8-bit digits over shared-memory histograms
// of counts (top_k) or of fixed-point probability mass (top_p); scaled values are
// recomputed on the fly in every pass. Included by sampling.cu only.

#include <cmath>
#include <cstdint>

#include "backends/llm/device/cuda/sampling_block.cuh"

namespace sluice::llm::cuda::sampling_block {

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
__device__ __forceinline__ int LaneBin(int lane, int j) {
  return kBins - 1 - 8 * lane - j;
}

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

// top_k: the key of the k-th largest candidate (key >= lower), counted with multiplicity; every
// candidate at least as large stays (ties kept, as the CPU). Returns the new lower bound.
__device__ inline uint32_t TopKBound(const float* row, int32_t vocab, float inv_t, uint32_t lower,
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
__device__ inline int32_t NthWithKey(const float* row, int32_t vocab, float inv_t, uint32_t key,
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
__device__ inline void TopPBound(const float* row, int32_t vocab, float inv_t, float s_max,
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
      if (keep < in_bin)
        *cut = NthWithKey(row, vocab, inv_t, prefix, static_cast<uint32_t>(keep), sh);
      return;
    }
  }
}

}  // namespace sluice::llm::cuda::sampling_block

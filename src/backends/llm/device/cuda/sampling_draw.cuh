#pragma once
// Step 5 of sampling.cu's SampleKernel, the draw: one categorical draw by inverse CDF in
// index order over the kept tokens. Each warp sums a contiguous segment, thread 0 picks the
// segment holding u * total, that warp walks it. Included by sampling.cu only.
//
// Random numbers: Philox4x32-10 keyed by the row's seed, counter = the row's offset (curand
// subsequence 0, element offset 4 * offset, so draw n of a sequence uses Philox block n
// whatever the batch). u = the top 53 bits of the block's first two 32-bit words / 2^53.

#include <curand_kernel.h>

#include <cstdint>

#include "backends/llm/device/cuda/sampling_block.cuh"

namespace sluice::llm::cuda::sampling_block {

__device__ inline double UniformDraw(uint64_t seed, uint64_t offset) {
  curandStatePhilox4_32_10_t state;
  curand_init(seed, /*subsequence=*/0, /*offset=*/offset * 4, &state);
  const uint4 x = curand4(&state);
  const uint64_t bits = ((static_cast<uint64_t>(x.x) << 32) | x.y) >> 11;
  return static_cast<double>(bits) * (1.0 / 9007199254740992.0);  // 2^-53
}

// The kept mass of each warp's segment and its last kept token, into sh.seg_mass and
// sh.seg_last. Starts and ends with a barrier.
__device__ __forceinline__ void SegmentMasses(const float* row, float inv_t, float s_max,
                                              uint32_t lower, int32_t cut, Segment seg,
                                              RowShared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  double mass = 0;
  int32_t last = -1;
  for (int32_t i = seg.begin + lane; i < seg.end; i += 32) {
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
}

// Thread 0: the draw's target u * total and the warp whose segment holds it (sh.walk_*);
// sh.result is the fallback if nothing is kept, else the last kept token.
__device__ __forceinline__ void PickSegment(uint64_t seed, uint64_t offset, int32_t fallback,
                                            RowShared& sh) {
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

// One warp: the first kept token of its segment whose cumulative mass (from sh.walk_base)
// exceeds sh.walk_target. The segment as 32 contiguous sub-ranges, one per lane: each lane
// sums its own, a warp scan finds the sub-range holding the target, and the warp walks only
// that one, 32 tokens at a time (a walk over the whole segment was slower: bench/RESULTS.md,
// issue 6 session 3).
__device__ __forceinline__ int32_t WalkSegment(const float* row, float inv_t, float s_max,
                                               uint32_t lower, int32_t cut, Segment seg,
                                               const RowShared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const double target = sh.walk_target;
  const int32_t sub_len = (seg.end - seg.begin + 31) / 32;
  const int32_t sub_begin = min(seg.end, seg.begin + lane * sub_len);
  const int32_t sub_end = min(seg.end, sub_begin + sub_len);
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
  return result;
}

// One categorical draw over the kept tokens, as the CPU: the first token, in index order,
// whose cumulative mass exceeds u * total; the last kept token if rounding leaves none; the
// fallback if nothing is kept.
__device__ inline int32_t Draw(const float* row, int32_t vocab, float inv_t, float s_max,
                               uint32_t lower, int32_t cut, uint64_t seed, uint64_t offset,
                               int32_t fallback, RowShared& sh) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const Segment seg = WarpSegment(vocab, warp);
  SegmentMasses(row, inv_t, s_max, lower, cut, seg, sh);
  if (threadIdx.x == 0) PickSegment(seed, offset, fallback, sh);
  __syncthreads();
  if (warp == sh.walk_warp) {
    const int32_t result = WalkSegment(row, inv_t, s_max, lower, cut, seg, sh);
    if (lane == 0) sh.result = result;
  }
  __syncthreads();
  return sh.result;
}

}  // namespace sluice::llm::cuda::sampling_block

#pragma once
// The building blocks of sampling.cu's kernels, all per thread block of kThreads threads:
// the sampler's constants, the order-preserving keys of temperature-scaled values, the
// vectorised walks over a logits row, the per-row state the steps share in shared memory,
// and block-wide reductions (argmax with index tie-breaks, online log-sum-exp, sums) that
// hand every thread the same result. Included by sampling.cu and its steps' headers
// (sampling_select.cuh, sampling_draw.cuh) only; everything is inline in a namespace of its
// own.

#include <cmath>
#include <cstdint>
#include <limits>

namespace sluice::llm::cuda::sampling_block {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kDigitBits = 8;
constexpr int kBins = 1 << kDigitBits;
constexpr int kPasses = 32 / kDigitBits;
constexpr unsigned kFullMask = 0xffffffffu;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr float kGreedyEpsilon = 1e-5f;  // SamplingParams::kGreedyEpsilon
constexpr int32_t kNone = std::numeric_limits<int32_t>::max();
// Keys: OrderedKey(-inf) + 1 is the smallest key of a token that can be sampled; a bound of
// kMaskAll keeps nothing (NaN has no key here: it is -inf by then).
constexpr uint32_t kFiniteFloor = 0x00800000u;
constexpr uint32_t kMaskAll = 0xffffffffu;
// top_p masses are exp(s - max) in fixed point with 40 fraction bits: integer sums are exact
// and order-independent (no atomics rounding), and a row of up to 2^23 tokens cannot overflow.
constexpr double kFixedOne = 1099511627776.0;  // 2^40

// A uint32 whose order is the float order of non-NaN values (-0 and +0 equal).
__device__ __forceinline__ uint32_t OrderedKey(float s) {
  uint32_t u = __float_as_uint(s);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The value the CPU sampler sees after temperature: penalised value (NaN = -inf) times 1/T.
__device__ __forceinline__ float Scaled(float v, float inv_t) {
  return isnan(v) ? kNegInf : __fmul_rn(v, inv_t);
}

// After the masks a token stays iff its key is above `lower`, or equal with index <= cut.
__device__ __forceinline__ bool Kept(int32_t i, uint32_t key, uint32_t lower, int32_t cut) {
  return key > lower || (key == lower && i <= cut);
}

__device__ __forceinline__ unsigned long long FixedMass(float s, float s_max) {
  const double e = exp(static_cast<double>(s) - static_cast<double>(s_max));
  return e > 0 ? __double2ull_rn(e * kFixedOne) : 0ull;  // NaN (+inf - +inf) counts nothing
}

__device__ __forceinline__ double DrawMass(float s, float s_max) {
  const double e = exp(static_cast<double>(s) - static_cast<double>(s_max));
  return e > 0 ? e : 0.0;
}

// Calls f(i, row[i]) for every i of the row this thread owns: runs of kRun consecutive
// elements read with 16-byte loads where the row is aligned, so that each thread has
// several loads in flight (a plain stride-kThreads loop had one: too few for a 150k-token
// row, bench/RESULTS.md, issue 6 session 3). Only for order-independent passes (maxima with index
// tie-breaks, sums in double, element-wise updates).
constexpr int kRun = 8;
// The same over [begin, end) of the row; begin a multiple of kRun.
template <typename F>
__device__ __forceinline__ void ForEachInRange(const float* row, int32_t begin, int32_t end, F f) {
  const bool vec = (reinterpret_cast<uintptr_t>(row) & 15) == 0;
  for (int32_t base = begin + threadIdx.x * kRun; base < end; base += kThreads * kRun) {
    float v[kRun];
    if (vec && base + kRun <= end) {
#pragma unroll
      for (int q = 0; q < kRun / 4; ++q) {
        const float4 x = *reinterpret_cast<const float4*>(row + base + 4 * q);
        v[4 * q] = x.x;
        v[4 * q + 1] = x.y;
        v[4 * q + 2] = x.z;
        v[4 * q + 3] = x.w;
      }
    } else {
#pragma unroll
      for (int e = 0; e < kRun; ++e) v[e] = base + e < end ? row[base + e] : 0.f;
    }
#pragma unroll
    for (int e = 0; e < kRun; ++e) {
      if (base + e < end) f(base + e, v[e]);
    }
  }
}

template <typename F>
__device__ __forceinline__ void ForEachInRow(const float* row, int32_t vocab, F f) {
  ForEachInRange(row, 0, vocab, f);
}

// Warp w's contiguous share of the row, [begin, end): a multiple of 32 tokens long (the last
// may be shorter or empty), so that index-ordered walks go warp by warp.
struct Segment {
  int32_t begin, end;
};
__device__ __forceinline__ Segment WarpSegment(int32_t vocab, int warp) {
  const int32_t len = ((vocab + kWarps - 1) / kWarps + 31) / 32 * 32;
  const int32_t begin = warp * len;
  return {begin, min(vocab, begin + len)};
}

// Per-row state in shared memory that the steps share (one instance per block).
struct Histograms {
  uint32_t count[kBins];
  unsigned long long mass[kBins];
};

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

// --- Block reductions (every thread gets the result) ---

struct Best {  // argmax candidate: larger value wins, ties go to the lower index
  float v;
  int32_t i;  // kNone: no candidate
};

__device__ __forceinline__ Best Better(Best a, Best b) {
  if (b.i == kNone) return a;
  if (a.i == kNone) return b;
  if (a.v != b.v) return a.v > b.v ? a : b;
  return a.i < b.i ? a : b;
}

struct Lse {  // running max and sum of exp(v - m), online-softmax style
  float m;
  double s;
};

__device__ __forceinline__ Lse MergeLse(Lse a, Lse b) {
  if (a.m < b.m) {
    const Lse t = a;
    a = b;
    b = t;
  }
  if (b.m == kNegInf) return a;
  return {a.m, a.s + b.s * exp(static_cast<double>(b.m) - static_cast<double>(a.m))};
}

struct AddOp {
  template <typename T>
  __device__ T operator()(T a, T b) const {
    return a + b;
  }
};
struct MaxOp {
  __device__ int32_t operator()(int32_t a, int32_t b) const { return a > b ? a : b; }
};
struct BetterOp {
  __device__ Best operator()(Best a, Best b) const { return Better(a, b); }
};
struct LseOp {
  __device__ Lse operator()(Lse a, Lse b) const { return MergeLse(a, b); }
};

template <typename T>
__device__ __forceinline__ T ShflXor(T v, int o) {
  return __shfl_xor_sync(kFullMask, v, o);
}
__device__ __forceinline__ Best ShflXor(Best v, int o) {
  return {__shfl_xor_sync(kFullMask, v.v, o), __shfl_xor_sync(kFullMask, v.i, o)};
}
__device__ __forceinline__ Lse ShflXor(Lse v, int o) {
  return {__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)};
}

template <typename T, typename Op>
__device__ __forceinline__ T WarpAllReduce(T v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, ShflXor(v, o));
  return v;
}

template <typename T>
__device__ __forceinline__ T WarpInclusiveSum(T v) {
  const int lane = threadIdx.x & 31;
  for (int o = 1; o < 32; o <<= 1) {
    const T n = __shfl_up_sync(kFullMask, v, o);
    if (lane >= o) v += n;
  }
  return v;
}

// Fixed combination order (warps in turn), so the result is the same in every thread.
template <typename T, typename Op>
__device__ T BlockAllReduce(T v, Op op) {
  __shared__ T partial[kWarps];
  v = WarpAllReduce(v, op);
  __syncthreads();  // a previous call's readers are done with `partial`
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = v;
  __syncthreads();
  T r = partial[0];
  for (int w = 1; w < kWarps; ++w) r = op(r, partial[w]);
  return r;
}

}  // namespace sluice::llm::cuda::sampling_block

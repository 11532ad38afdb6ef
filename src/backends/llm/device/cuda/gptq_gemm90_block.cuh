#pragma once
// The Hopper GPTQ GEMM's block (gptq_gemm90.cu, whose header comment describes the product,
// the pipeline and the copy paths): the ways its stages are filled, and one block's product,
// its stages, copies, groups and sums, chunk by chunk. Its pieces: gptq_gemm90_parts.cuh.
// Internal to gptq_gemm90.cu.

#include <cuda_bf16.h>

#include <cstdint>

#include "backends/llm/device/cuda/cp_async.cuh"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_parts.cuh"
#include "backends/llm/device/cuda/mbarrier.cuh"
#include "backends/llm/device/cuda/tensor_map.h"
#include "backends/llm/device/cuda/wgmma.cuh"

namespace sluice::llm::cuda::gemm90 {

// The ways a block's stages are filled (SLUICE_CUDA_GPTQ_GEMM90_TMA):
// - kCpAsync: each computing thread's cp.async share, a block barrier a chunk;
// - kTmaWarp: the copy engine, its copies issued by computing warp 0: x's [kN x 64] box from
//   the tensor map, swizzled as wgmma reads it, rows past `rows` zeros, and each tile's words
//   of the chunk as one run of bytes (lane i: tile i), all completing on the stage's full
//   barrier; the stage is refilled once its empty barrier has every computing thread's
//   arrival (after its wgmmas on the stage are done). No block-wide barrier in the loop, and
//   no copy instruction, address or wait in warps 1 and up;
// - kTmaProducer: the same copies issued by a fifth warpgroup of its own (FlashAttention-3's
//   and attention_prefill_ws.cu's division of labour), which gives up its registers
//   (setmaxnreg) to the two computing warpgroups and runs every stage ahead, no computing warp
//   ever waiting on a stage's release. 8-tile blocks of 128 rows and more only (kProducerOk):
//   the 64-row block runs two an SM, the 12-tile ones hold 384 computing threads, neither with
//   registers to spare.
enum Copy : int { kCpAsync = 0, kTmaWarp = 1, kTmaProducer = 2 };
template <int kN, int kTiles>
constexpr bool kProducerOk = kTiles == 8 && kN >= 128;
constexpr int kProducerThreads = 128;
// 24 x 128 + 240 x 256 is the 168 x 384 of the launch (a multiple of 8 each, setmaxnreg's
// unit); the 256-row block's computing code needs ~240.
constexpr int kProducerRegisters = 24, kComputeRegisters = 240;
static_assert(kProducerRegisters * kProducerThreads + kComputeRegisters * 256 <= 168 * 384);

// One block's product: its stages, copies, groups and sums (registers, every loop unrolled).
template <int kBits, int kOrder, int kN, int kTiles, int kCopy>
struct Block {
  using T = Tile<kBits, kN, kTiles>;
  static constexpr int kStages = T::kStages;
  static constexpr bool kTma = kCopy != kCpAsync;
  static_assert(kCopy != kTmaProducer || kProducerOk<kN, kTiles>);
  Stages<T> st;
  Copies<kBits, kN, kTiles> copies;  // !kTma
  const CUtensorMap* x_map;          // kTma: x's map, and lane's tile's words at chunk 0
  const uint4* tile_w;
  int row0;
  LaneGroups<kBits> z;
  const bf16* x;
  const int32_t* kstep_group;
  int in, chunks, begin, n, warp, lane;
  int grp[4];  // the groups of the 4 k16 steps of the next chunk to dequantize
  float acc[kN / 2];

  __device__ __forceinline__ void NextGroups(int c) {
#pragma unroll
    for (int s = 0; s < 4; ++s) grp[s] = __ldg(kstep_group + min(begin + c, chunks - 1) * 4 + s);
  }
  // After this thread's cp.async wait: its copies visible to wgmma, then every thread's.
  __device__ __forceinline__ void Landed() {
    wgmma::FenceProxyAsync();
    __syncthreads();
  }
  // Chunk c (in stage s)'s A fragments.
  __device__ __forceinline__ void Dequant(int c, int s, uint32_t (&a)[4][4]) {
    DequantChunk<kBits, kOrder>(st.WPtr(s) + warp * T::kLoads * 32, grp, z, lane, a);
    NextGroups(c + 1);
  }
  // Chunk c's stage, c % kStages, and its parity, (c / kStages) & 1, carried from chunk to chunk
  // in the loop: computed afresh, each use is a multiply-high and shifts on the uniform datapath
  // in the computing warps' chains (~20 instructions a chunk of ~190; RESULTS "Session 28").
  struct Ring {
    int s = 0;
    uint32_t parity = 0;
    __device__ __forceinline__ Ring Next() const {
      return s + 1 == kStages ? Ring{0, parity ^ 1u} : Ring{s + 1, parity};
    }
    __device__ __forceinline__ int Back(int k) const {  // (c - k)'s stage, 0 < k < kStages
      return s >= k ? s - k : s + kStages - k;
    }
  };

  // Chunk c (of this slice) by the copy engine, from the issuing warp (computing warp 0 or the
  // producing warpgroup's): its weights (lane 0 first has the stage's full barrier expect the
  // x box and every tile's bytes) and then its x box.
  // s: c's stage.
  __device__ __forceinline__ void TmaWeights(int c, int s) const {
    if (lane == 0) MbarrierArriveExpectTx(st.Full(s), T::kXBytes + kTiles * T::kTileBytes);
    __syncwarp();
    if (lane < kTiles) {
      BulkCopy(st.W(s) + lane * T::kTileBytes, tile_w + (begin + c) * T::kLoads * 32, T::kTileBytes,
               st.Full(s));
    }
  }
  __device__ __forceinline__ void TmaX(int c, int s) const {
    if (lane == 0) TmaLoad2d(st.X(s), x_map, (begin + c) * kChunk, row0, st.Full(s));
  }

  // Chunk c's wgmmas (registers `a`, dequantized a chunk earlier) and chunk c + 1's
  // dequantization into `a_next`, a third set: ptxas keeps wgmmas asynchronous only where no
  // register a wgmma reads is written while earlier wgmmas of the pipeline are in flight, so
  // the next chunk's fragments are ready before this chunk's fence, and the registers of chunk
  // c - 1 (still being read) stay untouched.
  // `ring`: chunk c's stage, advanced to c + 1's. desc0: stage 0's x descriptor (a stage's
  // is desc0 plus its offset in 16-byte units: shared addresses fit the 14-bit field).
  __device__ __forceinline__ void Chunk(int c, Ring& ring, uint64_t desc0, uint32_t (&a)[4][4],
                                        uint32_t (&a_next)[4][4]) {
    const int fill = c + kStages - 2, fill_s = ring.Back(2);  // the stage of fill - kStages = c - 2
    wgmma::Pin(reinterpret_cast<uint32_t&>(lane));  // kept, not read again from %tid each chunk
    const Ring next = ring.Next();
    if constexpr (kTma) {
      if (c + 1 < n) MbarrierWait(st.Full(next.s), next.parity);  // chunk c + 1 has landed
      if (kCopy == kTmaWarp && warp == 0 && fill < n) {
        // The stage's last chunk, c - 2, released by every thread in chunk c - 1 (its parity:
        // c's, or the one before where c - 2 lies in the round before c's).
        if (fill >= kStages) MbarrierWait(st.Empty(fill_s), ring.parity ^ (ring.s < 2 ? 1u : 0u));
        TmaWeights(fill, fill_s);
        TmaX(fill, fill_s);
      }
    } else {
      CpAsyncWait<kStages - 4>();  // chunk c + 1 has landed (this thread's copies) ...
      Landed();                    // ... and every thread's; chunk c - 2's wgmmas are done
      if (fill < n) {
        copies.Weights(st.W(fill_s), begin + fill);
        copies.X(st.X(fill_s), x, in, begin + fill);
      }
      CpAsyncCommit();
    }
    if (c + 1 < n) Dequant(c + 1, next.s, a_next);
    uint64_t desc[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {  // the low word's address field only: no carry to build
      const uint32_t lo = static_cast<uint32_t>(desc0) + ring.s * (T::kStageBytes / 16) + 2 * j;
      desc[j] = (desc0 >> 32 << 32) | lo;
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      wgmma::Pin(a[j]);
      wgmma::Pin(a_next[j]);
    }
    wgmma::Pin(desc);
    wgmma::Pin(acc);
    wgmma::Fence();
#pragma unroll
    for (int j = 0; j < 4; ++j) wgmma::WgmmaRs<kN, 0>(acc, a[j], desc[j]);
    wgmma::Commit();
    wgmma::Pin(acc);
    wgmma::Wait<1>();  // chunk c - 1's wgmmas: its registers and stage are free
    if constexpr (kTma) {
      if (c >= 1) MbarrierArrive(st.Empty(ring.Back(1)));
    }
    ring = next;
  }

  // kTma: the stages' barriers, by thread 0 before every thread's block barrier.
  __device__ __forceinline__ void InitBarriers() const {
    if (threadIdx.x == 0) {
      for (int s = 0; s < kStages; ++s) {
        MbarrierInit(st.Full(s), 1);
        MbarrierInit(st.Empty(s), T::kThreads);
      }
      FenceMbarrierInit();
    }
    __syncthreads();
  }

  // kTmaProducer, the producing warpgroup's warp 0 (lane: its lane): every chunk as soon as
  // its stage is free, weights of the first stages before PdlWait.
  __device__ __forceinline__ void Produce() const {
    const int ahead = min(kStages, n);
    for (int c = 0; c < ahead; ++c) TmaWeights(c, c);
    PdlWait();
    for (int c = 0; c < ahead; ++c) TmaX(c, c);
    for (int c = kStages; c < n; ++c) {
      MbarrierWait(st.Empty(c % kStages), (c / kStages - 1) & 1);
      TmaWeights(c, c % kStages);
      TmaX(c, c % kStages);
    }
  }

  // The prologue's copies (weights before PdlWait: they do not depend on the kernel before;
  // cp.async: stage s's first commit group holds its x, and for s = 0 every prologue weight),
  // then the chunks, three a round for the three register sets.
  __device__ __forceinline__ void Run() {
    if constexpr (kCopy == kTmaWarp) {
      if (warp == 0) {
        for (int s = 0; s < kStages - 2 && s < n; ++s) TmaWeights(s, s);
      }
    } else if constexpr (kCopy == kCpAsync) {
      for (int s = 0; s < kStages - 2 && s < n; ++s) copies.Weights(st.W(s), begin + s);
    }
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[i] = 0.f;
    wgmma::Pin(acc);  // zeroed here, not in a branch that meets the wgmmas' paths (ptxas C7515)
    uint32_t a0[4][4], a1[4][4], a2[4][4];
    PdlWait();
    if constexpr (kTma) {
      if (kCopy == kTmaWarp && warp == 0) {
        for (int s = 0; s < kStages - 2 && s < n; ++s) TmaX(s, s);
      }
      if (n > 0) MbarrierWait(st.Full(0), 0);
    } else {
      for (int s = 0; s < kStages - 2; ++s) {
        if (s < n) copies.X(st.X(s), x, in, begin + s);
        CpAsyncCommit();
      }
      CpAsyncWait<kStages - 3>();
      Landed();
    }
    if (n > 0) Dequant(0, 0, a0);
    Ring ring;
    const uint64_t desc0 = wgmma::KMajorDescriptor(st.X(0));
    for (int c = 0; c < n; c += 3) {
      Chunk(c, ring, desc0, a0, a1);
      if (c + 1 < n) Chunk(c + 1, ring, desc0, a1, a2);
      if (c + 2 < n) Chunk(c + 2, ring, desc0, a2, a0);
    }
    wgmma::Wait<0>();
    wgmma::Pin(acc);  // read only from here on
    if constexpr (!kTma) CpAsyncWait<0>();
  }
};

}  // namespace sluice::llm::cuda::gemm90

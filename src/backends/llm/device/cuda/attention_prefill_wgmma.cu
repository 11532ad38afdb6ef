// Prefill attention on Hopper's warpgroup tensor-core instructions (wgmma.mma_async, sm_90a),
// FlashAttention-3's scheme over the paged KV cache: what attention.cu's Attention() runs for
// head_dim 64 and 128 on a device of compute capability 9.0 with SLUICE_CUDA_PREFILL_WGMMA=1 or
// 2 (the default, 4, and 3 and 5 are attention_prefill_ws.cu's warp-specialized forms of it;
// 0, and everywhere else, attention_prefill_tc.cu's mma.sync kernel). Same inputs, tile
// map and grid bound (128 rows a block) as that kernel's default form, so a captured graph
// stays valid whichever of the two it holds, and the same rounding points: fp32 scores and
// statistics, the softmax weights rounded to bf16 for P V, the output rounded once.
//
// Why wgmma: mma.sync reads both operands from registers, so every 16x8x16 product costs
// ldmatrix traffic through the register file (the mma.sync kernel's limit, 279 TFLOP/s at 20k
// tokens on an H100); wgmma reads B (and here A of S = Q K^T) straight from shared memory, 64
// rows a warpgroup at a time, and runs asynchronously while the warps do the softmax.
//
// A block is two warpgroups (256 threads) and owns 128 rows, the (position, q head) pairs of one
// kv head's group, position-major as in the mma.sync kernel; warpgroup w owns rows 64 w ..
// 64 w + 63, warp i of the block rows 16 i .. 16 i + 15 (wgmma.cuh's fragment layouts). Per K/V
// tile of 128 positions each warpgroup computes
//   - S = Q K^T: D / 16 wgmma m64n128k16, Q and K from shared memory (both K-major);
//   - the online softmax on S's accumulators in registers (causal mask only on the tiles some
//     row of the warpgroup sees in part; row statistics in fp32, a row's 128 keys spread over
//     the 4 lanes of a quad: two shuffles per reduction), the weights rounded to bf16 in
//     registers, which are the A operand of
//   - O += P V: 8 wgmma m64nDk16, V from shared memory, MN-major (transposed).
// Two schedules here (SLUICE_CUDA_PREFILL_WGMMA): 1, the three steps in sequence,
// two K/V stages; 2, FlashAttention-3's intra-warpgroup overlap: tile t's S = Q K^T and tile
// t - 1's P V are issued together, and tile t's softmax runs while that P V occupies the
// tensor cores (three stages, as tile t - 1's V stays in use during tile t). Either way the
// two warpgroups run unsynchronised within a tile, so one's softmax overlaps the other's
// products. Tiles past a warpgroup's last query position (the second half of the diagonal
// block) are skipped by that warpgroup. Schedules 3 to 5, warp-specialized, are
// attention_prefill_ws.cu; what they all share is attention_prefill_wgmma.cuh.
//
// K/V tiles come from the paged cache with cp.async by all 256 threads (a page's rows are not
// contiguous across pages, which rules out one TMA box per tile), into 128-byte-swizzled
// stages (wgmma_layout.h): tile t + 1 streams in while tile t is computed (its copy issued
// right after tile t's first products, whose time its instructions then take), one barrier a
// tile.
// Tile t + 2's cache slots are read from the block table during tile t (into registers,
// stored to shared memory at its end), off the copy's path. Shared memory, 1024-byte aligned
// (the swizzle's period): Q (128 x D), then per stage K and V (128 x D each), then the slots;
// at D = 128, 32 KB + 2 (3) x 64 KB + 1 (1.5) KB = 162 (226.5) KB: one block per SM, up to
// 255 registers a thread. At D = 128, schedule 1 takes 215; schedule 2 all 255, as S, the new
// and the previous weights and O are all live during its softmax, and spills a few values:
// one reload a tile before the products, and a few in the masked (diagonal) tiles' softmax.

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_prefill_block.cuh"
#include "backends/llm/device/cuda/attention_prefill_wgmma.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"
#include "backends/llm/device/cuda/wgmma_layout.h"

namespace sluice::llm::cuda::attention {
namespace {

template <int D, bool kOverlapped>
struct WgConfig : WgTiles<D> {
  using Tiles = WgTiles<D>;
  static constexpr bool kOverlap = kOverlapped;
  static constexpr int kThreads = 128 * Tiles::kWarpgroups;
  static constexpr int kStages = kOverlap ? 3 : 2;  // the overlap keeps tile t - 1's V
  static constexpr uint32_t kSlotsAt = Tiles::kQBytes + kStages * Tiles::kStageBytes;
  // One atom more than the layout, to align its start, and the scratch word.
  static constexpr size_t kSmemBytes =
      wgmma::kAtomBytes + kSlotsAt + kStages * Tiles::kKeys * sizeof(int32_t) + 16;
  static_assert(kThreads >= Tiles::kKeys, "one slot lookup a thread");
  static_assert(Tiles::kKeys * Tiles::kChunks % kThreads == 0);
  static_assert(kThreads % Tiles::kChunks == 0, "a thread copies one chunk of its rows");
  static_assert(kSmemBytes <= 227 * 1024, "an sm_90 block's shared memory");
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

template <class Cfg>
__device__ __forceinline__ WgSmem SmemOf(unsigned char* raw) {
  const uint32_t pad = (wgmma::kAtomBytes - SmemAddr(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes;
  WgSmem sm;
  sm.q = SmemAddr(raw) + pad;
  sm.kv = sm.q + Cfg::kQBytes;
  sm.slots = reinterpret_cast<int32_t*>(raw + pad + Cfg::kSlotsAt);
  sm.scratch = sm.q + Cfg::kSlotsAt + Cfg::kStages * Cfg::kKeys * sizeof(int32_t);
  return sm;
}

// Tile t's K and V rows into its stage, with cp.async, swizzled. Rows past kv_end are zeros:
// their scores are masked, but a weight 0 times a NaN of V would still be NaN.
template <class Cfg>
__device__ __forceinline__ void CopyTile(const WgSmem& sm, const TcBlock& b, int t) {
  const int stage = t % Cfg::kStages;
  const int32_t* slots = sm.slots + stage * Cfg::kKeys;
  const uint32_t k_dst = sm.kv + stage * Cfg::kStageBytes;
  const int c = static_cast<int>(threadIdx.x) % Cfg::kChunks;  // kThreads % kChunks == 0
  const SlotChunks src = SlotChunksOf(b, c);
#pragma unroll
  for (int i = 0; i < Cfg::kKeys * Cfg::kChunks / Cfg::kThreads; ++i) {
    const int j = (static_cast<int>(threadIdx.x) + i * Cfg::kThreads) / Cfg::kChunks;
    const uint32_t at = k_dst + wgmma::SwizzledChunkOffset(Cfg::kKeys, j, c);
    CopyChunks(src, slots[j], at, at + Cfg::kTileBytes);
  }
}

// Tile t in sequence: S = Q K^T, softmax, O += P V, each waited for. kMask: whether some row
// of the warpgroup sees tile t in part. `under` runs while the first products do (the next
// tile's copy: its instructions then delay no wgmma).
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTile(const WgSmem& sm, int wg, int t, int t4,
                                           const WgRows& rows, float scale, WgState<Cfg>& st,
                                           Under&& under) {
  const int stage = t % Cfg::kStages;
  float s[Cfg::kSAcc];
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, wg, stage, stage);
  wgmma::Fence();
  IssueQkT<Cfg>(d, s);
  wgmma::Commit();
  under();
  wgmma::Wait<0>();
  wgmma::Pin(s);
  float alpha[2];
  Softmax<Cfg, kMask>(t, t4, rows, scale, s, st, st.p, alpha);
  Rescale<Cfg>(alpha, st.o);
  wgmma::Pin(st.o);
  wgmma::Fence();
  IssuePv<Cfg>(d, st.p, st.o);
  wgmma::Commit();
  wgmma::Wait<0>();
  wgmma::Pin(st.o);
}

// Tile t in the configured schedule.
template <class Cfg, bool kMask, class Under>
__device__ __forceinline__ void AttendTileAs(const WgSmem& sm, int wg, int t, int t4,
                                             const WgRows& rows, float scale, WgState<Cfg>& st,
                                             Under&& under) {
  if constexpr (Cfg::kOverlap) {
    AttendTileOverlapped<Cfg, kMask>(sm, wg, t, t4, rows, scale, st, under);
  } else {
    AttendTile<Cfg, kMask>(sm, wg, t, t4, rows, scale, st, under);
  }
}

// The kernel's body (see the file's comment); block (tile * num_kv_heads + kv head) as in the
// mma.sync kernel: kv heads vary fastest, a sequence's longest tiles go out first.
template <int D, bool kOverlap>
__device__ __forceinline__ void PrefillWgmmaBlock(const DeviceStep& step, const AttnParams& p) {
  using Cfg = WgConfig<D, kOverlap>;
  PdlLaunchDependents();
  // The tile map as FindWgBlock's, spelled out: ptxas gives this form two registers fewer.
  const int num_kv = p.num_kv_heads;
  const int group = p.num_q_heads / num_kv;
  const int kv_head = blockIdx.x % num_kv;
  int seq = 0, tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x / num_kv, group, Cfg::kRows, &seq, &tile, &ntiles)) {
    return PdlWaitInFirstBlock();
  }
  const TcBlock b = BlockOf<Cfg>(step, p, group, kv_head, seq, ntiles - 1 - tile);
  extern __shared__ __align__(1024) unsigned char wg_smem[];
  const WgSmem sm = SmemOf<Cfg>(wg_smem);
  const int tid = threadIdx.x;
  for (int t = 0; t < min(b.num_tiles, 2); ++t) {
    if (tid < Cfg::kKeys) sm.slots[t * Cfg::kKeys + tid] = SlotAt(b, t * Cfg::kKeys + tid);
  }
  __syncthreads();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)
  CopyQuery<Cfg, Cfg::kThreads>(sm, b, p, tid);
  CopyTile<Cfg>(sm, b, 0);
  CpAsyncCommit();

  const int warp = tid >> 5;
  const int wg = warp >> 2;
  const int g = (tid & 31) >> 2;
  const int t4 = tid & 3;
  const WgRows rows = RowsOf<Cfg>(b, warp, g);
  WgState<Cfg> st;
  InitState<Cfg>(step, st);

  for (int t = 0; t < b.num_tiles; ++t) {
    // Tile t (and, at t = 0, Q) has landed; the barrier also means every warpgroup is done
    // with the stage tile t + 1's copy overwrites (tile t - 1's, or t - 2's with three
    // stages, whose P V the overlapped schedule issues during tile t - 1), and sees tile
    // t + 1's slots. The next copy is issued only after the proxy fence, whose MEMBAR.ALL.CTA
    // may wait for this thread's outstanding memory operations: it must not wait for a copy.
    CpAsyncWait<0>();
    wgmma::FenceProxyAsync();
    __syncthreads();
    // Tile t + 2's slots, read now and stored after this tile's math, over those of tile
    // t + 2 - kStages, whose copy was issued before the barrier above.
    const bool next_slots = t + 2 < b.num_tiles && tid < Cfg::kKeys;
    const int32_t next_slot = next_slots ? SlotAt(b, (t + 2) * Cfg::kKeys + tid) : -1;
    // Tile t + 1's copy, issued under this tile's first products.
    auto copy_next = [&] {
      if (t + 1 < b.num_tiles) CopyTile<Cfg>(sm, b, t + 1);
      CpAsyncCommit();
    };
    // Warpgroup-uniform branches (wgmma needs all 128 threads); only the tiles that some row
    // of the warpgroup sees in part are masked.
    if (t * Cfg::kKeys <= rows.wg_last) {
      if ((t + 1) * Cfg::kKeys - 1 > rows.wg_first) {
        AttendTileAs<Cfg, true>(sm, wg, t, t4, rows, p.scale_log2, st, copy_next);
      } else {
        AttendTileAs<Cfg, false>(sm, wg, t, t4, rows, p.scale_log2, st, copy_next);
      }
    } else {
      copy_next();
    }
    if (next_slots) sm.slots[((t + 2) % Cfg::kStages) * Cfg::kKeys + tid] = next_slot;
  }
  // The last tile's V is still resident: no copy is issued after the loop, and a warpgroup's
  // last tile is the block's last or the one before (its rows end at most 64 rows, so 64
  // positions, before the block's), whose stage the last copy does not overwrite.
  if (Cfg::kOverlap && rows.wg_last >= 0) FlushPv<Cfg>(sm, st, [] {});

  // The block's description again rather than kept in registers through the loop.
  const TcBlock be = BlockOf<Cfg>(step, p, group, kv_head, seq, ntiles - 1 - tile);
  WriteRows<Cfg>(p, be, warp, g, t4, st.row_sum, st.o);
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Only the sm_90a cubin has a body; the host launches this kernel only on compute capability
// 9.0 (PrefillWgmmaFits).
template <int D, bool kOverlap>
__global__ void __launch_bounds__(WgConfig<D, kOverlap>::kThreads, 1)
    PrefillWgmmaKernel(const DeviceStep step, const AttnParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  PrefillWgmmaBlock<D, kOverlap>(step, p);
#endif
}

// Whether the current device runs sm_90a code: compute capability exactly 9.0 (the cubin is
// built for it alone). Read once per process: a stub drives one device.
bool DeviceIsSm90() {
  static const bool sm90 = [] {
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;
  }();
  return sm90;
}

template <int D, bool kOverlap>
void LaunchWgmma(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  LaunchWgKernel<WgConfig<D, kOverlap>>(PrefillWgmmaKernel<D, kOverlap>, step, p, stream);
}

}  // namespace

bool PrefillWgmmaFits(int head_dim) {
  return (head_dim == 64 || head_dim == 128) && DeviceIsSm90();
}

// 1: in sequence (AttendTile), 2: overlapped (AttendTileOverlapped), 3 to 5: warp-specialized
// (attention_prefill_ws.cu).
void LaunchPrefillWgmma(const DeviceStep& step, const AttnParams& p, int schedule,
                        cudaStream_t stream) {
  if (schedule >= 3) return LaunchPrefillWarpSpecialized(step, p, schedule, stream);
  const bool overlap = schedule == 2;
  if (p.head_dim == 64) {
    return overlap ? LaunchWgmma<64, true>(step, p, stream)
                   : LaunchWgmma<64, false>(step, p, stream);
  }
  return overlap ? LaunchWgmma<128, true>(step, p, stream)
                 : LaunchWgmma<128, false>(step, p, stream);
}

}  // namespace sluice::llm::cuda::attention

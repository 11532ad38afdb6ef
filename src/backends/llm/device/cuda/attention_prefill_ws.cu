// Prefill attention on Hopper, warp-specialized (SLUICE_CUDA_PREFILL_WGMMA=3 to 5; 4 is the
// default on an sm_90 device): the wgmma kernel's scheme, math and rounding points
// (attention_prefill_wgmma.cu's header comment; the shared pieces are
// attention_prefill_wgmma.cuh), its tile map and grid bound (128 rows a block), with
// FlashAttention-3's division of labour inside the block:
//
//  - warpgroup 0 (128 threads) only copies: it reads the block table, issues Q's and every
//    K/V tile's cp.async copies into a ring of kStages stages (a tile's 128 positions span
//    pages, so no TMA box: 16-byte chunks, swizzled as before) and has each thread's copies of
//    a tile signal the stage's "full" mbarrier when they land
//    (cp.async.mbarrier.arrive.noinc); it refills a stage once its "empty" mbarrier says both
//    computing warpgroups are done with the tile in it. It gives up its registers
//    (setmaxnreg.dec) to
//  - warpgroups 1 and 2 (setmaxnreg.inc), which compute rows 0 .. 63 and 64 .. 127 of the
//    block: each waits for tile t's "full" barrier, issues S = Q K^T of tile t together with
//    O += P V of tile t - 1 (whose weights its previous softmax left in registers), waits for
//    both, releases tile t - 1's stage, and runs tile t's online softmax. No block-wide barrier
//    after the start: a warpgroup stalls only on its own data.
//
// Schedule 3 orders the two computing warpgroups' products (ws::WaitsForTurn, named barriers
// 1 and 2): one issues its pair of products only after the other has issued its own, so the
// tensor cores run one warpgroup's products while the other runs its softmax, the two
// alternating (FlashAttention-3's ping-pong). Schedule 4 leaves them unordered: with the
// softmax at one MUFU.EX2 an exponential it is as fast as 3 or faster (RESULTS session 20).
// Schedule 5 is 3 with schedule 2's intra-warpgroup overlap (AttendTileOverlapped): a
// warpgroup waits only for its S before the softmax, which then also runs under its own P V,
// as FlashAttention-3 does; its S, both weights and O are then live at once.
//
// Shared memory, 1024-byte aligned: Q (128 x D), kStages stages of K and V (128 x D each), then
// the stages' full and empty mbarriers and a scratch word (AttendTileOverlapped's); at D = 128,
// 32 KB + 3 x 64 KB = 224 KB: one block a multiprocessor, launched with 168 registers a thread
// (64 K / 384); the copying warpgroup keeps kCopierRegisters of them and the computing ones
// take the rest.

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/attention_prefill_block.cuh"
#include "backends/llm/device/cuda/attention_prefill_wgmma.cuh"
#include "backends/llm/device/cuda/attention_ws_pipeline.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/mbarrier.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"
#include "backends/llm/device/cuda/wgmma_layout.h"

namespace sluice::llm::cuda::attention {
namespace {

template <int D>
struct WsConfig : WgTiles<D> {
  using Tiles = WgTiles<D>;
  static constexpr int kCopiers = ws::kCopiers;
  static constexpr int kComputers = 128 * Tiles::kWarpgroups;
  static constexpr int kThreads = kCopiers + kComputers;
  // As many as fit beside Q at D = 128; more than four buy nothing at D = 64.
  static constexpr int kStages = D == 128 ? 3 : 4;
  static constexpr uint32_t kBarriersAt = Tiles::kQBytes + kStages * Tiles::kStageBytes;
  static constexpr uint32_t kScratchAt = kBarriersAt + 2 * kStages * sizeof(uint64_t);
  // One atom more than the layout, to align its start.
  static constexpr size_t kSmemBytes = wgmma::kAtomBytes + kScratchAt + 16;
  // 24 would spill the copy's address arithmetic; 232 holds every schedule's computing code
  // without a spill, and 40 x 128 + 232 x 256 is exactly the 168 x 384 of the launch.
  static constexpr int kCopierRegisters = 40;
  static constexpr int kComputeRegisters = 232;
  static_assert(kCopierRegisters * kCopiers + kComputeRegisters * kComputers <= 64 * 1024,
                "the register file of a multiprocessor");
  static_assert(kComputeRegisters % 8 == 0 && kCopierRegisters % 8 == 0, "setmaxnreg's unit");
  static_assert(Tiles::kKeys == ws::kTileKeys && ws::kCopiers == 4 * ws::kLanes,
                "each copying warp takes 32 keys of a tile (ws::CopyKey)");
  static_assert(kSmemBytes <= 227 * 1024, "an sm_90 block's shared memory");
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// The block's shared memory: Q and the stages as the other wgmma schedules lay them out (no
// slots: the copying warps keep theirs in registers), then kStages full barriers, kStages
// empty ones and the scratch word.
struct WsSmem {
  WgSmem tiles;
  uint32_t full;
  uint32_t empty;
};

template <class Cfg>
__device__ __forceinline__ WsSmem WsSmemOf(unsigned char* raw) {
  const uint32_t pad = (wgmma::kAtomBytes - SmemAddr(raw) % wgmma::kAtomBytes) % wgmma::kAtomBytes;
  WsSmem sm;
  sm.tiles.q = SmemAddr(raw) + pad;
  sm.tiles.kv = sm.tiles.q + Cfg::kQBytes;
  sm.tiles.slots = nullptr;
  sm.tiles.scratch = sm.tiles.q + Cfg::kScratchAt;
  sm.full = sm.tiles.q + Cfg::kBarriersAt;
  sm.empty = sm.full + Cfg::kStages * sizeof(uint64_t);
  return sm;
}

__device__ __forceinline__ uint32_t BarrierOf(uint32_t barriers, int stage) {
  return barriers + stage * static_cast<uint32_t>(sizeof(uint64_t));
}

// The copying warpgroup's work (copier: its thread, 0 .. 127): Q, then every tile of the block
// into stage t % kStages (ws::CopyKey's map), each tile's copies signalling its full barrier.
// Rows past kv_end are zeros: their scores are masked, but a weight 0 times a NaN of V would
// still be NaN. Each lane looks up the slot of one key of its warp's 32, for the next tile
// while it waits for that tile's stage.
template <class Cfg>
__device__ __forceinline__ void CopyTiles(const WsSmem& sm, const TcBlock& b, const AttnParams& p,
                                          int copier) {
  constexpr int kChunks = Cfg::kChunks;
  const int chunk = ws::CopyChunk(copier, kChunks);
  const SlotChunks src = SlotChunksOf(b, chunk);
  const int lookup = copier;  // lane l of warp w finds the slot of key 32 w + l of each tile
  CopyQuery<Cfg, Cfg::kCopiers>(sm.tiles, b, p, copier);
  int32_t slot = SlotAt(b, lookup);
  for (int t = 0; t < b.num_tiles; ++t) {
    const int stage = ws::StageOf(t, Cfg::kStages);
    const int32_t next_slot = t + 1 < b.num_tiles ? SlotAt(b, (t + 1) * Cfg::kKeys + lookup) : -1;
    if (t >= Cfg::kStages) {
      MbarrierWait(BarrierOf(sm.empty, stage), ws::EmptyParity(t, Cfg::kStages));
    }
    const uint32_t k_dst = sm.tiles.kv + stage * Cfg::kStageBytes;
#pragma unroll
    for (int i = 0; i < kChunks; ++i) {
      const int32_t s = __shfl_sync(kFullMask, slot, ws::CopySlotLane(copier, kChunks, i));
      const uint32_t at =
          k_dst + wgmma::SwizzledChunkOffset(Cfg::kKeys, ws::CopyKey(copier, kChunks, i), chunk);
      CopyChunks(src, s, at, at + Cfg::kTileBytes);
    }
    CpAsyncArriveOn(BarrierOf(sm.full, stage));
    slot = next_slot;
  }
  // No thread leaves with copies in flight (wait_group waits for committed groups only).
  CpAsyncCommit();
  CpAsyncWait<0>();
}

// Tile t of a computing warpgroup that sees it (kMask: in part): S = Q K^T of tile t, and with
// kWithPv (every tile but the first) O += P V of tile t - 1 (st.p over stage st.p_stage's V),
// issued together, then `pass_turn`, then both waited for and `release` (tile t - 1's stage is
// free as soon as they are done, before the softmax); then tile t's softmax leaves its weights
// in st.p and rescales O. Branch-free between the issue and the wait: ptxas would otherwise
// serialise the products.
template <class Cfg, bool kMask, bool kWithPv, class PassTurn, class Release>
__device__ __forceinline__ void AttendTileWs(const WgSmem& sm, int wg, int t, int stage, int t4,
                                             const WgRows& rows, float scale, WgState<Cfg>& st,
                                             PassTurn&& pass_turn, Release&& release) {
  float s[Cfg::kSAcc];
  const WgDescriptors d = DescriptorsOf<Cfg>(sm, wg, stage, st.p_stage);
  if constexpr (kWithPv) wgmma::Pin(st.o);
  wgmma::Fence();
  IssueQkT<Cfg>(d, s);
  wgmma::Commit();
  if constexpr (kWithPv) {
    IssuePv<Cfg>(d, st.p, st.o);
    wgmma::Commit();
  }
  pass_turn();
  wgmma::Wait<0>();
  wgmma::Pin(s);
  if constexpr (kWithPv) wgmma::Pin(st.o);
  release();
  float alpha[2];
  Softmax<Cfg, kMask>(t, t4, rows, scale, s, st, st.p, alpha);
  Rescale<Cfg, true>(alpha, st.o);  // no wgmma in flight: both were waited for above
}

// A computing warpgroup's work (thread: 0 .. 255 over both; warp i of them owns rows 16 i ..
// 16 i + 15). Every tile of the block passes through both warpgroups, also the last one that a
// warpgroup's rows do not reach (the second half of the diagonal block), so that both take
// every turn and release every stage. kOverlap: tiles as AttendTileOverlapped (schedule 5),
// whose first P V adds zero weights over tile 0's V.
template <class Cfg, bool kPingPong, bool kOverlap>
__device__ __forceinline__ void ComputeTiles(const WsSmem& sm, const DeviceStep& step,
                                             const AttnParams& p, const WgBlockAt& at, int thread) {
  const TcBlock b = BlockAt<Cfg>(step, p, at);
  const int warp = thread >> 5;
  const int wg = warp >> 2;
  const int g = (thread & 31) >> 2;
  const int t4 = thread & 3;
  const WgRows rows = RowsOf<Cfg>(b, warp, g);
  const int tiles = b.num_tiles;
  // Whether some row of the warpgroup sees tile t (a prefix of the tiles).
  auto sees = [&](int t) { return t * Cfg::kKeys <= rows.wg_last; };
  WgState<Cfg> st;
  InitState<Cfg>(step, st);
  for (int t = 0; t < tiles; ++t) {
    const int stage = ws::StageOf(t, Cfg::kStages);
    MbarrierWait(BarrierOf(sm.full, stage), ws::FullParity(t, Cfg::kStages));
    // The copies wrote through the generic proxy and wgmma reads through the async one: each
    // reader fences once the barrier's acquire has made the copies visible to it.
    wgmma::FenceProxyAsync();
    if (kPingPong && ws::WaitsForTurn(wg, t)) {
      NamedBarrierSync(ws::kTurnBarrier + wg, Cfg::kComputers);
    }
    auto pass_turn = [&] {
      if (kPingPong && ws::PassesTurn(wg, t, tiles)) {
        NamedBarrierArrive(ws::kTurnBarrier + 1 - wg, Cfg::kComputers);
      }
    };
    // Tile t - 1's K (its S) and V (its P V) are done with: the copying warpgroup may refill
    // its stage. Once per tile from every computing thread, after its products' wait.
    auto release = [&] {
      if (t > 0) MbarrierArrive(BarrierOf(sm.empty, ws::StageOf(t - 1, Cfg::kStages)));
    };
    // Warpgroup-uniform branches (wgmma needs all 128 threads), each with its whole issue and
    // wait.
    if (sees(t)) {
      const bool mask = (t + 1) * Cfg::kKeys - 1 > rows.wg_first;
      if (kOverlap) {
        if (mask) {
          AttendTileOverlapped<Cfg, true>(sm.tiles, wg, t, t4, rows, p.scale_log2, st, pass_turn);
        } else {
          AttendTileOverlapped<Cfg, false>(sm.tiles, wg, t, t4, rows, p.scale_log2, st, pass_turn);
        }
        release();
      } else if (t == 0) {
        if (mask) {
          AttendTileWs<Cfg, true, false>(sm.tiles, wg, t, stage, t4, rows, p.scale_log2, st,
                                         pass_turn, release);
        } else {
          AttendTileWs<Cfg, false, false>(sm.tiles, wg, t, stage, t4, rows, p.scale_log2, st,
                                          pass_turn, release);
        }
      } else if (mask) {
        AttendTileWs<Cfg, true, true>(sm.tiles, wg, t, stage, t4, rows, p.scale_log2, st, pass_turn,
                                      release);
      } else {
        AttendTileWs<Cfg, false, true>(sm.tiles, wg, t, stage, t4, rows, p.scale_log2, st,
                                       pass_turn, release);
      }
    } else if (t > 0 && sees(t - 1)) {
      FlushPv<Cfg>(sm.tiles, st, pass_turn);  // tile t - 1's P V, held back for tile t
      release();
    } else {
      pass_turn();
      release();
    }
    st.p_stage = stage;
  }
  // The last tile's P V; its stage is not refilled.
  if (sees(tiles - 1)) FlushPv<Cfg>(sm.tiles, st, [] {});

  // The block's description again rather than kept in registers through the loop.
  const TcBlock be = BlockAt<Cfg>(step, p, at);
  WriteRows<Cfg>(p, be, warp, g, t4, st.row_sum, st.o);
}

template <int D, bool kPingPong, bool kOverlap>
__device__ __forceinline__ void PrefillWsBlock(const DeviceStep& step, const AttnParams& p) {
  using Cfg = WsConfig<D>;
  PdlLaunchDependents();
  WgBlockAt at;
  if (!FindWgBlock<Cfg>(step, p, &at)) return PdlWaitInFirstBlock();
  extern __shared__ __align__(1024) unsigned char ws_smem[];
  const WsSmem sm = WsSmemOf<Cfg>(ws_smem);
  const int tid = threadIdx.x;
  if (tid == 0) {
    for (int s = 0; s < Cfg::kStages; ++s) {
      MbarrierInit(BarrierOf(sm.full, s), Cfg::kCopiers);
      MbarrierInit(BarrierOf(sm.empty, s), Cfg::kComputers);
    }
    FenceMbarrierInit();
  }
  __syncthreads();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)
  if (tid < Cfg::kCopiers) {
    ReleaseRegisters<Cfg::kCopierRegisters>();
    CopyTiles<Cfg>(sm, BlockAt<Cfg>(step, p, at), p, tid);
  } else {
    ClaimRegisters<Cfg::kComputeRegisters>();
    ComputeTiles<Cfg, kPingPong, kOverlap>(sm, step, p, at, tid - Cfg::kCopiers);
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// Only the sm_90a cubin has a body; the host launches this kernel only on compute capability
// 9.0 (PrefillWgmmaFits).
template <int D, bool kPingPong, bool kOverlap>
__global__ void __launch_bounds__(WsConfig<D>::kThreads, 1)
    PrefillWsKernel(const DeviceStep step, const AttnParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  PrefillWsBlock<D, kPingPong, kOverlap>(step, p);
#endif
}

template <int D>
void LaunchWs(int schedule, const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  using Cfg = WsConfig<D>;
  if (schedule == 5) return LaunchWgKernel<Cfg>(PrefillWsKernel<D, true, true>, step, p, stream);
  if (schedule == 4) return LaunchWgKernel<Cfg>(PrefillWsKernel<D, false, false>, step, p, stream);
  LaunchWgKernel<Cfg>(PrefillWsKernel<D, true, false>, step, p, stream);
}

}  // namespace

void LaunchPrefillWarpSpecialized(const DeviceStep& step, const AttnParams& p, int schedule,
                                  cudaStream_t stream) {
  if (p.head_dim == 64) return LaunchWs<64>(schedule, step, p, stream);
  LaunchWs<128>(schedule, step, p, stream);
}

}  // namespace sluice::llm::cuda::attention

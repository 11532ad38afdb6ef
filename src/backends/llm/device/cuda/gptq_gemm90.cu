// The GPTQ GEMM of Hopper (sm_90a): GptqGemmLinear (gptq_kernels.h) on a compute capability
// 9.0 device with SLUICE_CUDA_GPTQ_GEMM90 on (gptq_gemm.cu dispatches here; the mma.sync GEMM
// keeps every other device). Warpgroup tensor-core products
// (wgmma, wgmma.cuh) with the weights dequantized in registers straight into wgmma's A
// fragments: no bf16 copy of the weights anywhere, in memory or shared memory.
//
// The product is computed transposed, y^T = W^T x^T: the weight's output columns are wgmma's
// M (the tensor-core layout's 16-column tiles are already stored as mma.m16n8k16's A fragments,
// which are also wgmma's per-warp A fragments), the batch rows are N (kN: 64, 128, 192 or 256),
// the inputs K. A block of kTiles warps (8: two warpgroups, 12: three) owns kTiles tiles (128 or
// 192 output columns) x kN rows; warp w dequantizes tile w, its warpgroup's wgmma.m64nNk16
// multiplies its 4 tiles by the shared x. So each weight is read from memory and dequantized
// once per kN rows, and x (bf16, 2 bytes a value against the weights' half or one) is the
// operand wgmma reads from shared memory, in the 128-byte-swizzled K-major layout, once per
// kTiles tiles. The shapes and the launch plan: gptq_gemm90_plan.h. The narrow kN spends no
// tensor work on padding rows at 33 to 64 rows; three warpgroups read x from L2 once per 192
// columns instead of 128 and cut gate|up into fewer, fuller waves. (A wider block of two m64
// tiles a warpgroup would need 2 x kN / 2 accumulators plus twice the A fragments a thread,
// past the 255 registers at kN = 128; sharing x between CTAs of a cluster needs TMA multicast,
// mbarriers and a cluster launch: not done.)
//
// Pipeline: the inputs in chunks of 64 (4 k16 steps), kStages stages of shared memory each
// holding the chunk's x tile [kN x 64] and the packed words of the block's tiles, filled by
// cp.async kStages - 2 chunks ahead. Each chunk: wait for its copies and every thread
// (__syncthreads), refill the stage freed two chunks ago, dequantize the chunk's A fragments
// (double-buffered registers), issue its 4 wgmmas and commit them, then wait for the previous
// chunk's wgmmas: the tensor cores work through chunk c - 1 while the warps dequantize chunk c.
// With SLUICE_CUDA_GPTQ_GEMM90_TMA (2 by default) the copy engine fills the stages instead
// (Copy's comment): computing warp 0 (1) or a producing warpgroup (2) issues a chunk's copies (x's
// box through a tensor map, one run of bytes a tile) once the stage's empty barrier says it is
// free, each warp waits for its chunk's full barrier, and every computing thread marks the stage
// empty once its wgmmas on it are done: no cp.async, copy address or block barrier in the computing
// warps' loop, which the stall reasons (RESULTS "Session 21") showed bound by their
// instruction chains. The block: gptq_gemm90_block.cuh; its pieces: gptq_gemm90_parts.cuh.
//
// Exactness as gptq_gemm.cu: bf16(scale * (q - zero)) by one exact fp32 FMA (4 bits) or exact
// subtract and one multiply (8 bits), then the bf16 rounding; fp32 accumulation in a fixed
// order. Split-k (input slices whose fp32 partials gptq_gemm.cu's reduction adds in order) where
// the tiles leave SMs idle: o, down, q|k|v; and, with SLUICE_CUDA_GPTQ_GEMM90_TAIL, only for the
// column blocks of a last wave at most half full (a second launch: gate|up's 296 blocks at 256
// rows run 264 whole and the last 32 in 4 slices, 2.25 waves' time instead of 3). A column
// block's slices are one thread block cluster that adds its sums in distributed shared memory
// (ReduceInCluster, in the same order; SLUICE_CUDA_GPTQ_GEMM90_CLUSTER=0: the workspace) where
// the device holds every cluster at once: no partials written to memory and read back (o at
// 256 rows: 14.7 MB each way), no reduction launch.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "backends/llm/device/cuda/cp_async.cuh"
#include "backends/llm/device/cuda/cuda_tuning.h"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_block.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_parts.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_plan.h"
#include "backends/llm/device/cuda/gptq_kernels.h"
#include "backends/llm/device/cuda/mbarrier.cuh"
#include "backends/llm/device/cuda/multiprocessors.h"
#include "backends/llm/device/cuda/pick.cuh"
#include "backends/llm/device/cuda/tensor_map.h"
#include "backends/llm/device/cuda/wgmma.cuh"

namespace sluice::llm::cuda {
namespace {

using namespace gptq;    // NOLINT: the pieces shared with the other GPTQ kernels
using namespace gemm90;  // NOLINT: the block and its pieces (gptq_gemm90_block.cuh)

static_assert(kGemm90MaxSplits == kGptqGemmMaxSplits);

// Block (row tile blockIdx.x of kN rows, column tile col_block0 + blockIdx.y of kTiles tiles,
// input slice blockIdx.z of gridDim.z; with more than one slice, fp32 partials of the columns
// from col_block0's on, or, launched as clusters of the gridDim.z slices, y from the cluster's
// sums (ReduceInCluster)). The 64 x 128 block fits
// two an SM (128 registers a thread, without spills; 61 or 81 KiB of shared memory), so that
// one block's dequantization runs under the other's wgmmas. x_map (TMA): x as a [rows x in]
// tensor, boxes of kN rows x 64 inputs, 128-byte swizzle. kTmaProducer: threads 0 .. 127
// produce, the computing warps follow them.
template <int kBits, int kOrder, int kN, int kTiles, int kCopy>
constexpr int kBlockThreads = 32 * kTiles + (kCopy == kTmaProducer ? kProducerThreads : 0);
// kGlu (the SwiGLU launch, GptqGemm90SwiGlu; stages by TMA, input slices only in clusters):
// parts {gate, up}, column block j's first kTiles / 2 tiles gate's tiles from j kTiles / 2 on
// and the others up's same columns, its epilogue act's columns (StoreSwiGlu, or
// ReduceSwiGluInCluster from its cluster's slices) instead of y.
template <int kBits, int kOrder, int kN, int kTiles, int kCopy, bool kGlu>
__global__ void __launch_bounds__(kBlockThreads<kBits, kOrder, kN, kTiles, kCopy>,
                                  kCopy == kTmaProducer ? 1 : Tile<kBits, kN, kTiles>::kPerSm)
    GptqGemm90Kernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o,
                     int32_t rows, float* __restrict__ partials, int32_t col_block0,
                     const __grid_constant__ CUtensorMap x_map) {
  static_assert(!kGlu || (kCopy != kCpAsync && kTiles % 8 == 0));
#if SLUICE_WGMMA
  PdlLaunchDependents();
  extern __shared__ uint4 smem[];
  Block<kBits, kOrder, kN, kTiles, kCopy> b;
  constexpr int kFirst = kCopy == kTmaProducer ? kProducerThreads : 0;  // first computing thread
  const int tid = static_cast<int>(threadIdx.x) - kFirst;               // < 0: a producing thread
  b.st.base = (SmemAddr(smem) + 1023u) & ~1023u;
  b.st.local = reinterpret_cast<char*>(smem) + (b.st.base - SmemAddr(smem));
  b.warp = tid >> 5;
  b.lane = static_cast<int>(threadIdx.x) & 31;
  b.x = x;
  b.kstep_group = l.kstep_group;
  b.in = l.in;
  b.chunks = l.in / kChunk;
  const int per_slice = (b.chunks + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);
  b.begin = min(b.chunks, static_cast<int>(blockIdx.z) * per_slice);
  b.n = min(b.chunks, b.begin + per_slice) - b.begin;
  const int tiles = Pick(o.end, o.count - 1) / 16;
  const int row0 = static_cast<int>(blockIdx.x) * kN;
  const int tile0 = (static_cast<int>(blockIdx.y) + col_block0) * kTiles;
  constexpr int kHalf = kTiles / 2;
  const int glu0 = (static_cast<int>(blockIdx.y) + col_block0) * kHalf;  // kGlu: gate's first
  const auto tile_of = [&](int i) {                                      // the block's tile i
    if constexpr (kGlu) return glu0 + i % kHalf + (i < kHalf ? 0 : o.end[0] / 16);
    return tile0 + i;
  };
  if constexpr (kCopy != kCpAsync) {
    b.x_map = &x_map;
    b.tile_w = TileVectors(o, tiles, tile_of(min(b.lane, kTiles - 1)), l.in / (256 / kBits));
    b.row0 = row0;
    b.InitBarriers();
  } else {
    b.copies.Plan(o, tiles, tile0, l.in / (256 / kBits), x, l.in, rows, row0);
  }
  if constexpr (kCopy == kTmaProducer) {
    if (tid < 0) {
      ReleaseRegisters<kProducerRegisters>();
      if (tid < 32 - kProducerThreads) b.Produce();  // the warpgroup's warp 0
      if (ClusterBlocks() > 1) {                     // ReduceInCluster's two cluster barriers
        ClusterSync();
        ClusterSync();
      }
      return;  // the computing threads meet only at named barrier 1 from here on
    }
    ClaimRegisters<kComputeRegisters>();
  }
  const Column col = ColumnOf(o, min(tile_of(b.warp), tiles - 1) * 16);
  b.z.sz = Pick(o.scale_zero, col.part) + static_cast<int64_t>(col.col + (b.lane >> 2)) * l.groups;
  b.z.groups = l.groups;
  b.NextGroups(0);
  __half2 raw[2];
  b.z.Fetch(b.grp[0], raw);
  b.z.Set(raw, b.grp[0]);
  b.Run();
  const int end_tiles = TilesAfresh(o);  // not `tiles`, which ptxas would hold through the loop
  if constexpr (kGlu) {
    if (ClusterBlocks() > 1) {
      ReduceSwiGluInCluster<kN, kTiles, kFirst>(b.acc, b.st.local, o, glu0 * 16, row0, rows);
    } else {
      StoreSwiGlu<kN, kTiles, kFirst>(b.acc, b.st.local, o, glu0 * 16, row0, rows);
    }
    return;
  }
  if (ClusterBlocks() > 1) {  // the slices' sums added in the cluster (read here: no register
                              // held through the loop)
    ReduceInCluster<kN, kTiles, kFirst>(b.acc, b.st.local, o, end_tiles, tile0, row0, rows);
    return;
  }
  StoreBlock<kN, kTiles, kFirst>(b.acc, b.st.local, o, end_tiles, tile0, row0, rows,
                                 gridDim.z > 1 ? partials : static_cast<float*>(nullptr),
                                 col_block0 * kTiles * 16);
#else
  // Not launched off sm_90a (Gemm90On); the wait keeps the dependent-launch contract.
  PdlWait();
#endif
}

// The kernel of one shape, its shared memory opened once, blocks an SM holds, and clusters of
// s blocks the device holds at once (0: none).
struct Kernel90 {
  void (*fn)(const bf16*, GptqLayout, GptqParts, int32_t, float*, int32_t, CUtensorMap);
  int smem, rows, tiles, threads, per_sm;
  int clusters[kGemm90MaxSplits + 1];
};
template <int kBits, int kOrder, int kN, int kTiles, int kCopy, bool kGlu = false>
Kernel90 KernelOf() {
  using T = Tile<kBits, kN, kTiles>;
  static const Kernel90 k = [] {
    constexpr int kThreads = kBlockThreads<kBits, kOrder, kN, kTiles, kCopy>;
    Kernel90 r{GptqGemm90Kernel<kBits, kOrder, kN, kTiles, kCopy, kGlu>,
               T::kSmem,
               kN,
               kTiles,
               kThreads,
               1,
               {}};
    cudaFuncSetAttribute(r.fn, cudaFuncAttributeMaxDynamicSharedMemorySize, r.smem);
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&r.per_sm, r.fn, kThreads, r.smem) !=
            cudaSuccess ||
        r.per_sm < 1) {
      r.per_sm = 1;
    }
    for (int s = 2; s <= kGemm90MaxSplits; ++s) {
      cudaLaunchAttribute attr{};
      attr.id = cudaLaunchAttributeClusterDimension;
      attr.val.clusterDim = {1, 1, static_cast<unsigned>(s)};
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(1, 1, s);
      config.blockDim = dim3(kThreads);
      config.dynamicSmemBytes = r.smem;
      config.attrs = &attr;
      config.numAttrs = 1;
      if (cudaOccupancyMaxActiveClusters(&r.clusters[s], r.fn, &config) != cudaSuccess) {
        r.clusters[s] = 0;
      }
    }
    cudaGetLastError();
    return r;
  }();
  return k;
}

// The kernel of kGemm90Shapes[shape] (kTmaProducer where the shape takes it, else cp.async);
// kGlu: the SwiGLU launch's, which only the producer's 8-tile shapes have (else none, fn null).
template <int kBits, int kOrder, int kCopy, bool kGlu, size_t kI>
Kernel90 KernelOfShape() {
  constexpr int kN = kGemm90Shapes[kI].rows, kTiles = kGemm90Shapes[kI].tiles;
  constexpr int kUsed = kCopy == kTmaProducer && !kProducerOk<kN, kTiles> ? kCpAsync : kCopy;
  if constexpr (!kGlu) {
    return KernelOf<kBits, kOrder, kN, kTiles, kUsed>();
  } else if constexpr (kUsed == kTmaProducer && kTiles == 8) {
    return KernelOf<kBits, kOrder, kN, kTiles, kTmaProducer, true>();
  } else {
    return Kernel90{};
  }
}
template <int kBits, int kOrder, int kCopy, bool kGlu, size_t... kI>
Kernel90 KernelAt(int shape, std::index_sequence<kI...>) {
  Kernel90 k{};
  ((shape == static_cast<int>(kI) ? (k = KernelOfShape<kBits, kOrder, kCopy, kGlu, kI>(), 0) : 0),
   ...);
  return k;
}
template <int kCopy, bool kGlu = false>
Kernel90 KernelFor(const GptqLayout& l, int shape) {
  constexpr auto kAll = std::make_index_sequence<kGemm90ShapeCount>();
  const bool four = l.bits == 4, step_order = l.mma == 1;
  return four ? (step_order ? KernelAt<4, 1, kCopy, kGlu>(shape, kAll)
                            : KernelAt<4, 2, kCopy, kGlu>(shape, kAll))
              : (step_order ? KernelAt<8, 1, kCopy, kGlu>(shape, kAll)
                            : KernelAt<8, 2, kCopy, kGlu>(shape, kAll));
}
Kernel90 KernelFor(const GptqLayout& l, int shape, int copy) {
  switch (copy) {
    case kTmaWarp:
      return KernelFor<kTmaWarp>(l, shape);
    case kTmaProducer:
      return KernelFor<kTmaProducer>(l, shape);
    default:
      return KernelFor<kCpAsync>(l, shape);
  }
}

// The launch (gptq_gemm90_plan.h) for stages filled by `copy`: the knobs of cuda_tuning.h, or
// the variant forced.
Gemm90Plan PlanFor(const GptqLayout& l, int32_t rows, int32_t out, size_t floats,
                   const Gemm90Knobs& knobs, int copy) {
  Gemm90Problem p;
  p.in = l.in;
  p.bits = l.bits;
  p.rows = rows;
  p.out = out;
  p.floats = floats;
  p.sms = MultiprocessorCount();
  p.producer = copy == kTmaProducer;
  if (knobs.shapes != 0) {  // SHAPES=0's model ignores occupancy: no kernel opened to ask
    for (int i = 0; i < kGemm90ShapeCount; ++i) p.per_sm[i] = KernelFor<kCpAsync>(l, i).per_sm;
  }
  return PlanGemm90(p, knobs);
}

Gemm90Knobs KnobsOf(const GptqGemm90Variant* forced) {
  if (forced != nullptr) {
    return {forced->shapes, forced->tile_rows, forced->tile_cols, forced->splits};
  }
  const CudaTuning& t = Tuning();
  return {t.gptq_gemm90_shapes, t.gptq_gemm90_tile_rows, t.gptq_gemm90_tile_cols,
          t.gptq_gemm90_splits};
}

}  // namespace

namespace gptq {

bool Gemm90On() {
  static const bool on = [] {
    if (!Tuning().gptq_gemm90) return false;
    int device = 0, major = 0, minor = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return major == 9 && minor == 0;  // the sm_90a cubin's only devices
  }();
  return on;
}

void Gemm90Prepare() {
  if (!Gemm90On()) return;
  for (int shape = 0; shape < kGemm90ShapeCount; ++shape) {
    for (int bits : {4, 8}) {
      for (int order : {1, 2}) {
        GptqLayout l;
        l.bits = bits;
        l.mma = order;
        for (int copy : {kCpAsync, kTmaWarp, kTmaProducer}) KernelFor(l, shape, copy);
        KernelFor<kTmaProducer, true>(l, shape);
      }
    }
  }
}

// The last wave's slices (gptq_gemm90_plan.h) of a whole-input launch of kernel k: the
// variant's forced tail, else SLUICE_CUDA_GPTQ_GEMM90_TAIL's modelled one.
Gemm90Tail TailFor(const GptqLayout& l, const Gemm90Plan& plan, const Kernel90& k, int32_t rows,
                   int32_t out, size_t floats, const GptqGemm90Variant* forced) {
  const int col_blocks = (out / 16 + k.tiles - 1) / k.tiles;
  const int row_blocks = (rows + k.rows - 1) / k.rows;
  if (plan.splits != 1 || floats == 0) return {};
  if (forced != nullptr && forced->tail_blocks >= 0) {
    return ForcedGemm90Tail(forced->tail_blocks, forced->tail_splits, col_blocks, l.in / kChunk,
                            rows, k.tiles * 16, out, floats);
  }
  if (!Tuning().gptq_gemm90_tail) return {};
  return PlanGemm90Tail(MultiprocessorCount() * k.per_sm, row_blocks, col_blocks, l.in / kChunk,
                        rows, k.tiles * 16, out, floats);
}

int CopyOf(const GptqGemm90Variant* forced) {
  return forced != nullptr && forced->tma >= 0 ? forced->tma : Tuning().gptq_gemm90_tma;
}

// Whether a launch of `blocks` column blocks (rows x columns) of kernel k, each in `splits`
// input slices, adds the slices' sums in clusters (ReduceInCluster) instead of through the
// workspace and GemmReduce: SLUICE_CUDA_GPTQ_GEMM90_CLUSTER (or the variant's), where the
// device holds every cluster at once (the plan's waves stay as modelled; else the workspace).
bool InClusters(const Kernel90& k, int splits, int64_t blocks, const GptqGemm90Variant* forced) {
  const bool on = forced != nullptr && forced->cluster >= 0 ? forced->cluster != 0
                                                            : Tuning().gptq_gemm90_cluster;
  return on && splits > 1 && splits <= kGemm90MaxSplits && blocks <= k.clusters[splits];
}

// What a plan launches, shared by the launch and its report: kernel k (of `copy`'s path), the
// tail, the grid's row blocks and whole column blocks, and which launches add their slices in
// clusters.
struct Launches {
  Kernel90 k{};
  Gemm90Tail tail;
  int row_blocks = 0, whole = 0;
  bool clusters = false, tail_clusters = false;
};
Launches LaunchesFor(const GptqLayout& l, const Gemm90Plan& plan, int copy, int32_t rows,
                     int32_t out, size_t floats, const GptqGemm90Variant* forced) {
  Launches r;
  r.k = KernelFor(l, plan.shape, copy);
  r.tail = TailFor(l, plan, r.k, rows, out, floats, forced);
  r.row_blocks = (rows + r.k.rows - 1) / r.k.rows;
  r.whole = (out / 16 + r.k.tiles - 1) / r.k.tiles - r.tail.blocks;
  r.clusters = InClusters(r.k, plan.splits, int64_t{r.row_blocks} * r.whole, forced);
  r.tail_clusters = InClusters(r.k, r.tail.splits, int64_t{r.row_blocks} * r.tail.blocks, forced);
  return r;
}

// The launches of kernel k for `r`: its whole column blocks in `splits` input slices, then the
// last wave's tail (r.tail's), each launch's slices added in clusters (clusters,
// tail_clusters) or by GemmReduce (splits = 1: neither).
void LaunchAll(const Kernel90& k, const Launches& r, int splits, bool clusters, bool tail_clusters,
               const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
               float* workspace, const CUtensorMap& map, cudaStream_t stream) {
  const auto launch = [&](int blocks, int s, bool in_clusters, int col_block0) {
    LaunchDependentClusters(
        dim3(1, 1, in_clusters ? s : 1), true, k.fn,
        dim3(r.row_blocks, static_cast<unsigned>(blocks), static_cast<unsigned>(s)),
        dim3(k.threads), static_cast<size_t>(k.smem), stream, x, layout, parts, rows, workspace,
        col_block0, map);
    if (s > 1 && !in_clusters) {
      GemmReduce(workspace, s, parts, rows, stream, col_block0 * k.tiles * 16);
    }
  };
  launch(r.whole, splits, clusters, 0);
  if (r.tail.blocks > 0) launch(r.tail.blocks, r.tail.splits, tail_clusters, r.whole);
}

GptqGemm90Launch Gemm90LaunchFor(const GptqLayout& layout, int32_t out, int32_t rows,
                                 size_t workspace_bytes, const GptqGemm90Variant* forced) {
  const size_t floats = workspace_bytes / sizeof(float);
  const int copy = CopyOf(forced);
  const Gemm90Plan plan = PlanFor(layout, rows, out, floats, KnobsOf(forced), copy);
  const Gemm90Shape& shape = kGemm90Shapes[plan.shape];
  const Launches r = LaunchesFor(layout, plan, copy, rows, out, floats, forced);
  GptqGemm90Launch launch{shape.rows, shape.tiles * 16, plan.splits, r.tail.blocks, r.tail.splits};
  launch.clusters = r.clusters;
  launch.tail_clusters = r.tail_clusters;
  return launch;
}

void Gemm90Linear(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                  float* workspace, size_t workspace_bytes, const GptqGemm90Variant* forced,
                  cudaStream_t stream) {
  const int32_t out = parts.end[parts.count - 1];
  const size_t floats = workspace == nullptr ? 0 : workspace_bytes / sizeof(float);
  const int copy = CopyOf(forced);
  const Gemm90Plan plan = PlanFor(layout, rows, out, floats, KnobsOf(forced), copy);
  // x as the TMA kernels' tensor map (a kernel parameter): [rows x in], boxes of the block's
  // rows x one chunk. Where it cannot be made, the cp.async kernel runs instead.
  CUtensorMap map{};
  const bool mapped = copy != kCpAsync &&
                      Bf16TensorMap2d(x, layout.in, rows, kChunk,
                                      static_cast<uint32_t>(kGemm90Shapes[plan.shape].rows), &map);
  const Launches r = LaunchesFor(layout, plan, mapped ? copy : kCpAsync, rows, out, floats, forced);
  LaunchAll(r.k, r, plan.splits, r.clusters, r.tail_clusters, x, layout, parts, rows, workspace,
            map, stream);
}

// The SwiGLU launch (GptqGemm90SwiGlu): the plan of the gate|up product (its launches, the
// last wave's sliced tail too), run with the kernel that pairs gate's and up's tiles, where
// its block is an 8-tile one with a producing warpgroup and every sliced launch adds its
// slices in clusters (SiLU needs the whole sums: the workspace's separate reduction has none).
bool Gemm90SwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                  float* workspace, size_t workspace_bytes, cudaStream_t stream) {
  const int32_t width = parts.end[0], out = parts.end[1];
  if (!Tuning().gptq_swiglu || !GptqGemm90Runs(rows) || parts.count != 2 || out != 2 * width ||
      width % 64 != 0 || rows < 1 || (layout.mma != 1 && layout.mma != 2) ||
      (layout.bits != 4 && layout.bits != 8) || layout.in % kChunk != 0 ||
      CopyOf(nullptr) != kTmaProducer) {
    return false;
  }
  const size_t floats = workspace == nullptr ? 0 : workspace_bytes / sizeof(float);
  const Gemm90Plan plan = PlanFor(layout, rows, out, floats, KnobsOf(nullptr), kTmaProducer);
  const Launches r = LaunchesFor(layout, plan, kTmaProducer, rows, out, floats, nullptr);
  const Kernel90 k = KernelFor<kTmaProducer, true>(layout, plan.shape);
  if (k.fn == nullptr) return false;
  const bool clusters = InClusters(k, plan.splits, int64_t{r.row_blocks} * r.whole, nullptr);
  const bool tail_clusters =
      InClusters(k, r.tail.splits, int64_t{r.row_blocks} * r.tail.blocks, nullptr);
  CUtensorMap map{};
  if ((plan.splits > 1 && !clusters) ||
      (r.tail.blocks > 0 && r.tail.splits > 1 && !tail_clusters) ||
      !Bf16TensorMap2d(x, layout.in, rows, kChunk, static_cast<uint32_t>(k.rows), &map)) {
    return false;
  }
  LaunchAll(k, r, plan.splits, clusters, tail_clusters, x, layout, parts, rows, workspace, map,
            stream);  // no GemmReduce: every sliced launch is in clusters
  return true;
}

}  // namespace gptq

bool GptqGemm90On() {
  return gptq::Gemm90On();
}

bool GptqGemm90SwiGlu(const bf16* x, const GptqLayout& layout, const GptqParts& parts, int32_t rows,
                      float* workspace, size_t workspace_bytes, cudaStream_t stream) {
  return gptq::Gemm90SwiGlu(x, layout, parts, rows, workspace, workspace_bytes, stream);
}

}  // namespace sluice::llm::cuda

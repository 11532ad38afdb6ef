#pragma once
// The Hopper GPTQ GEMM with its dequantization in warps of its own
// (SLUICE_CUDA_GPTQ_GEMM90_TMA=3; internal to gptq_gemm90.cu, whose header describes the
// product, the block shapes and the copies).
//
// Why: in the other paths each computing warp dequantizes its tile into wgmma's A registers and
// issues the wgmmas, so a chunk costs a warpgroup its whole instruction stream (~200 SASS
// instructions a warp at ~7 cycles each, Nsight Compute: "Warp Cycles Per Issued Instruction"
// 7.1, tensor pipe ~70 % of the active cycles, bench/RESULTS.md session 27), longer than the
// chunk's wgmmas: the tensor cores wait on the dequantization.
//
// Here the block has two roles, meeting at mbarriers:
// - a dequantizing warpgroup (threads 0-127): warp w turns tiles w and w + 4 of the chunk into
//   bf16 (the same DequantChunk, bit for bit) and stores them with stmatrix into an A buffer,
//   the block's [kTiles x 16 columns] x 64 inputs in wgmma's 128-byte-swizzled K-major layout
//   (as x's stage is), then fence.proxy.async and an arrival on the buffer's full barrier. It
//   frees the stage's words at once (an arrival on the stage's empty barrier) and runs up to
//   kABufs chunks ahead of the products;
// - two product warpgroups (128-383): per chunk 4 wgmmas with both operands in shared memory
//   (WgmmaSs: 64 output columns of the A buffer x the stage's x), committed, then the wait for
//   the chunk before, whose stage and A buffer they release. Their first warp also issues the
//   copies (x's box and the tiles' words, as kTmaProducer's producer): a stage's next chunk
//   once the chunk before it is released, kStages - 1 chunks ahead of the products.
// The product warpgroups' accumulators are laid out as the other paths' (warp w of warpgroup g:
// tile 4 g + w), so StoreBlock and ReduceInCluster store them unchanged (kFirst = 128). No
// setmaxnreg: ptxas allocates every thread the launch's cap (65,536 / 384 = 168), which the
// kN / 2 accumulators of a 256-row block need.

#include <cstdint>

#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/gptq_common.cuh"
#include "backends/llm/device/cuda/gptq_gemm90_parts.cuh"
#include "backends/llm/device/cuda/mbarrier.cuh"
#include "backends/llm/device/cuda/wgmma.cuh"

namespace sluice::llm::cuda::gemm90 {

// The stages and A buffers of a kTmaTransform block: Tile's stages (as many as the shared
// memory holds beside kABufs A buffers, up to kMaxStages), then the A buffers, then the
// barriers (stages' full and empty, A buffers' full and empty).
template <int kBits, int kN, int kTiles>
struct SsTile {
  using Base = Tile<kBits, kN, kTiles>;
  static constexpr int kThreads = 32 * kTiles;  // the product threads (StoreBlock's)
  static constexpr int kStageBytes = Base::kStageBytes, kXBytes = Base::kXBytes;
  static constexpr int kTileBytes = Base::kTileBytes, kLoads = Base::kLoads;
  static constexpr int kABufs = 3;
  static constexpr int kABytes = kTiles * 16 * 128;  // [kTiles x 16 columns] x 64 inputs, bf16
  static constexpr int kStages =
      std::min(kMaxStages, (227 * 1024 - 1024 - 128 - kABufs * kABytes) / kStageBytes);
  static constexpr int kAAt = kStages * kStageBytes;
  static constexpr int kBarriersAt = kAAt + kABufs * kABytes;
  static constexpr int kSmem = kBarriersAt + 2 * (kStages + kABufs) * 8 + 1024;
  static constexpr int kDequantThreads = 128;     // 4 warps, 2 tiles each
  static constexpr int kFirst = kDequantThreads;  // first product thread
  static constexpr int kBlockThreads = kFirst + kThreads;
  static_assert(kTiles == 8 && kN >= 128, "two product warpgroups of 4 tiles, 128+ rows");
  static_assert(kStages >= 3 && kSmem <= 227 * 1024 && kABytes % 1024 == 0);
  static_assert(kN * (kTiles * 16 + 4) * 4 <= kStages * kStageBytes);  // StoreBlock's rows
};

// stmatrix .x4: the four 8 x 8 bf16 matrices of an mma.m16n8k16 A fragment (r[i]: matrix i,
// lane 4 g + t holding its row g, columns 2 t and 2 t + 1) to shared memory, each lane giving
// the address of one matrix row (lanes 8 i .. 8 i + 7: matrix i's rows 0-7).
__device__ __forceinline__ void StMatrixX4(uint32_t addr, const uint32_t (&r)[4]) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr),
               "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
#endif
}

// d (64 x N, fp32) += A (64 x 16, bf16) B (16 x N, bf16), both from shared memory through
// their descriptors, both K-major (the GPTQ GEMM's dequantized weights and x, with
// SLUICE_CUDA_GPTQ_GEMM90_TMA=3), asynchronously: d must not be touched until a Wait() covers
// the group this wgmma is committed in. N: 64, 128, 192 or 256.
template <int N>
__device__ __forceinline__ void WgmmaSs(float (&d)[N / 2], uint64_t a, uint64_t b) {
  static_assert(N == 64 || N == 128 || N == 192 || N == 256, "wgmma m64nNk16 shapes used here");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  if constexpr (N == 64) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%"
        "24,%25,%26,%27,%28,%29,%30,%31}"
        ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
        : "l"(a), "l"(b), "n"(1));
  } else if constexpr (N == 128) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%"
        "24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%"
        "46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"
        ", %64, %65, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
          "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
          "+f"(d[63])
        : "l"(a), "l"(b), "n"(1));
  } else if constexpr (N == 192) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %98, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n192k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%"
        "24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%"
        "46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%"
        "68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%"
        "90,%91,%92,%93,%94,%95}"
        ", %96, %97, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
          "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
          "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]),
          "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]),
          "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]),
          "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]),
          "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95])
        : "l"(a), "l"(b), "n"(1));
  } else if constexpr (N == 256) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
        "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%"
        "24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%"
        "46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%"
        "68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%"
        "90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%"
        "110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}"
        ", %128, %129, p, 1, 1, 0, 0;\n}\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]),
          "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]),
          "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]),
          "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]),
          "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]),
          "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]),
          "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
          "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
          "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]),
          "+f"(d[63]), "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]),
          "+f"(d[70]), "+f"(d[71]), "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]),
          "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]),
          "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]), "+f"(d[89]), "+f"(d[90]),
          "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]), "+f"(d[97]),
          "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
          "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]),
          "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]),
          "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), "+f"(d[121]),
          "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
        : "l"(a), "l"(b), "n"(1));
  }
#endif
}

template <int kBits, int kOrder, int kN, int kTiles>
struct SsBlock {
  using T = SsTile<kBits, kN, kTiles>;
  static constexpr int kStages = T::kStages, kABufs = T::kABufs;
  Stages<T> st;
  const CUtensorMap* x_map;
  const uint4* tile_w;  // the producing warp's lane's tile's words at chunk 0
  int row0, begin, n, lane;

  __device__ __forceinline__ uint32_t A(int b) const { return st.base + T::kAAt + b * T::kABytes; }
  __device__ __forceinline__ uint32_t AFull(int b) const { return st.Full(2 * kStages + b); }
  __device__ __forceinline__ uint32_t AEmpty(int b) const {
    return st.Full(2 * kStages + kABufs + b);
  }

  __device__ __forceinline__ void InitBarriers() const {
    if (threadIdx.x == 0) {
      for (int s = 0; s < kStages; ++s) {
        MbarrierInit(st.Full(s), 1);
        MbarrierInit(st.Empty(s), T::kThreads + 4);  // product threads, dequantizing warps
      }
      for (int b = 0; b < kABufs; ++b) {
        MbarrierInit(AFull(b), 4);
        MbarrierInit(AEmpty(b), T::kThreads);
      }
      FenceMbarrierInit();
    }
    __syncthreads();
  }

  // The issuing warp (the first product warp; lane: its lane): chunk c's weights (lane 0 has
  // the stage's full barrier expect them and x's box) and x's box.
  __device__ __forceinline__ void Copy(int c, bool weights, bool x) const {
    const int s = c % kStages;
    if (weights) {
      if (lane == 0) MbarrierArriveExpectTx(st.Full(s), T::kXBytes + kTiles * T::kTileBytes);
      __syncwarp();
      if (lane < kTiles) {
        BulkCopy(st.W(s) + lane * T::kTileBytes, tile_w + (begin + c) * T::kLoads * 32,
                 T::kTileBytes, st.Full(s));
      }
    }
    if (x && lane == 0) TmaLoad2d(st.X(s), x_map, (begin + c) * kChunk, row0, st.Full(s));
  }

  // Dequantizing warp `warp` (0-3): tiles warp and warp + 4 of each chunk into A buffer
  // c % kABufs, each tile's 16 rows. Lane L stores row L % 8 of matrix L / 8 of each k16 step j
  // of a tile: column 16 tile + 8 (i & 1) + L % 8, inputs 16 j + 8 (i >> 1) .. + 7, the 16-byte
  // unit 2 j + (i >> 1) of its 128-byte row, swizzled by the row's low 3 bits.
  __device__ __forceinline__ void Dequantize(int warp, LaneGroups<kBits> (&z)[2],
                                             const int32_t* kstep_group) {
    const int i = lane >> 3, r = lane & 7;
    const uint32_t row = static_cast<uint32_t>((16 * warp + 8 * (i & 1) + r) * 128);
    int grp[4];
    for (int c = 0; c < n; ++c) {
      const int s = c % kStages, b = c % kABufs;
#pragma unroll
      for (int k = 0; k < 4; ++k) grp[k] = __ldg(kstep_group + (begin + c) * 4 + k);
      MbarrierWait(st.Full(s), (c / kStages) & 1);
      uint32_t a[2][4][4];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        DequantChunk<kBits, kOrder>(st.WPtr(s) + (warp + 4 * h) * T::kLoads * 32, grp, z[h], lane,
                                    a[h]);
      }
      __syncwarp();
      if (lane == 0) MbarrierArrive(st.Empty(s));  // the stage's words are read
      if (c >= kABufs) MbarrierWait(AEmpty(b), (c / kABufs - 1) & 1);
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint32_t unit = static_cast<uint32_t>(2 * j + (i >> 1)) ^ static_cast<uint32_t>(r);
          StMatrixX4(A(b) + row + h * 64 * 128 + (unit << 4), a[h][j]);
        }
      }
      wgmma::FenceProxyAsync();
      __syncwarp();
      if (lane == 0) MbarrierArrive(AFull(b));
    }
  }

  // Product warpgroup g (0 or 1): output columns 64 g .. + 63 of the block, all kN rows;
  // `issuer`: this warp issues the copies.
  __device__ __forceinline__ void Multiply(int g, bool issuer, float (&acc)[kN / 2]) const {
    const int ahead = min(kStages, n);
    if (issuer) {
      for (int c = 0; c < ahead; ++c) Copy(c, true, false);
    }
    PdlWait();  // x is the kernel before's output, and y may still be its input
    if (issuer) {
      for (int c = 0; c < ahead; ++c) Copy(c, false, true);
    }
#pragma unroll
    for (int i = 0; i < kN / 2; ++i) acc[i] = 0.f;
    wgmma::Pin(acc);
    for (int c = 0; c < n; ++c) {
      const int s = c % kStages, b = c % kABufs;
      MbarrierWait(st.Full(s), (c / kStages) & 1);
      MbarrierWait(AFull(b), (c / kABufs) & 1);
      uint64_t da[4], dx[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        da[j] = wgmma::KMajorDescriptor(A(b) + g * 64 * 128 + 32 * j);
        dx[j] = wgmma::KMajorDescriptor(st.X(s) + 32 * j);
      }
      wgmma::Pin(acc);
      wgmma::Fence();
#pragma unroll
      for (int j = 0; j < 4; ++j) WgmmaSs<kN>(acc, da[j], dx[j]);
      wgmma::Commit();
      wgmma::Pin(acc);
      wgmma::Wait<1>();  // chunk c - 1's: its stage and A buffer are free
      if (c >= 1) {
        const int p = c - 1;
        MbarrierArrive(st.Empty(p % kStages));
        MbarrierArrive(AEmpty(p % kABufs));
        if (issuer && p + kStages < n) {  // the stage's next chunk, once every reader is done
          MbarrierWait(st.Empty(p % kStages), (p / kStages) & 1);
          Copy(p + kStages, true, true);
        }
      }
    }
    wgmma::Wait<0>();
    wgmma::Pin(acc);
  }
};

// The kTmaTransform kernel (gptq_gemm90.cu's GptqGemm90Kernel's parameters and grid).
template <int kBits, int kOrder, int kN, int kTiles>
__global__ void __launch_bounds__(SsTile<kBits, kN, kTiles>::kBlockThreads, 1)
    GptqGemm90SsKernel(const bf16* __restrict__ x, const GptqLayout l, const GptqParts o,
                       int32_t rows, float* __restrict__ partials, int32_t col_block0,
                       const __grid_constant__ CUtensorMap x_map) {
#if SLUICE_WGMMA
  using T = SsTile<kBits, kN, kTiles>;
  PdlLaunchDependents();
  extern __shared__ uint4 smem[];
  SsBlock<kBits, kOrder, kN, kTiles> b;
  const int tid = static_cast<int>(threadIdx.x);
  b.st.base = (SmemAddr(smem) + 1023u) & ~1023u;
  b.st.local = reinterpret_cast<char*>(smem) + (b.st.base - SmemAddr(smem));
  b.lane = tid & 31;
  const int chunks = l.in / kChunk;
  const int per_slice = (chunks + static_cast<int>(gridDim.z) - 1) / static_cast<int>(gridDim.z);
  b.begin = min(chunks, static_cast<int>(blockIdx.z) * per_slice);
  b.n = min(chunks, b.begin + per_slice) - b.begin;
  const int tiles = Pick(o.end, o.count - 1) / 16;
  b.row0 = static_cast<int>(blockIdx.x) * kN;
  const int tile0 = (static_cast<int>(blockIdx.y) + col_block0) * kTiles;
  b.x_map = &x_map;
  b.tile_w = TileVectors(o, tiles, tile0 + min(b.lane, kTiles - 1), l.in / (256 / kBits));
  b.InitBarriers();
  if (tid < T::kFirst) {  // the dequantizing warpgroup
    const int warp = tid >> 5;
    LaneGroups<kBits> z[2];
    const int g0 = __ldg(l.kstep_group + min(b.begin, chunks - 1) * 4);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const Column col = ColumnOf(o, min(tile0 + warp + 4 * h, tiles - 1) * 16);
      z[h].sz =
          Pick(o.scale_zero, col.part) + static_cast<int64_t>(col.col + (b.lane >> 2)) * l.groups;
      z[h].groups = l.groups;
      __half2 raw[2];
      z[h].Fetch(g0, raw);
      z[h].Set(raw, g0);
    }
    b.Dequantize(warp, z, l.kstep_group);
    if (ClusterBlocks() > 1) {  // ReduceInCluster's two cluster barriers
      ClusterSync();
      ClusterSync();
    }
    return;  // the product threads meet only at named barrier 1 from here on
  }
  float acc[kN / 2];
  b.Multiply((tid - T::kFirst) >> 7, tid - T::kFirst < 32, acc);
  if (ClusterBlocks() > 1) {
    ReduceInCluster<kN, kTiles, T::kFirst>(acc, b.st.local, o, tiles, tile0, b.row0, rows);
    return;
  }
  StoreBlock<kN, kTiles, T::kFirst>(acc, b.st.local, o, tiles, tile0, b.row0, rows,
                                    gridDim.z > 1 ? partials : static_cast<float*>(nullptr),
                                    col_block0 * kTiles * 16);
#else
  PdlWait();
#endif
}

}  // namespace sluice::llm::cuda::gemm90

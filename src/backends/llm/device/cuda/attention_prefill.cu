// Prefill attention on CUDA cores (attention_common.cuh's LaunchPrefillOnCudaCores):
// attention.cu's PrefillKernel, for the head dims the tensor-core prefill does not take (and
// for every head dim with PrefillPath::kCudaCores).

#include <algorithm>
#include <climits>
#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"
#include "backends/llm/device/cuda/dependent_launch.cuh"
#include "backends/llm/device/cuda/kernels.h"

namespace sluice::llm::cuda::attention {
namespace {

// Prefill: 4 threads per query row, each owning D/32 of the row's 16-byte chunks.
constexpr int kPrefillThreads = 128;
constexpr int kPrefillRows = kPrefillThreads / 4;
constexpr int kPrefillKeys = 32;

// Thread (r, part) of a block owns 16-byte chunks part, part + 4, ... of row r's head
// (interleaved so that the 4 threads of a row read adjacent shared-memory words): kMine of
// them, the last possibly past the head (head_dim not a multiple of 32).
template <int D>
constexpr int kChunksOf = D / 8;
template <int D>
constexpr int kMineOf = (kChunksOf<D> + 3) / 4;

// Positions [k0, k0 + kPrefillKeys) of the kv head's K and V into shared memory. Positions
// past kv_end are zero-filled: they are masked, and 0 * garbage could be NaN.
template <int D>
__device__ __forceinline__ void LoadKvTile(const AttnParams& p, const int32_t* table,
                                           int block_size, int64_t kv_width, int kv_head, int k0,
                                           int kv_end, bf16 (&ks)[kPrefillKeys][D],
                                           bf16 (&vs)[kPrefillKeys][D]) {
  constexpr int kChunks = kChunksOf<D>;
  const int tid = threadIdx.x;
  for (int e = tid; e < kPrefillKeys * kChunks; e += kPrefillThreads) {
    const int j = e / kChunks;
    const int cc = e % kChunks;
    const int pos = k0 + j;
    uint4 kraw = make_uint4(0, 0, 0, 0);
    uint4 vraw = make_uint4(0, 0, 0, 0);
    if (pos < kv_end) {
      const int64_t off =
          SlotOf(table, pos, block_size) * kv_width + static_cast<int64_t>(kv_head) * D + cc * 8;
      kraw = LoadChunk(p.k_cache + off);
      vraw = LoadChunk(p.v_cache + off);
    }
    *reinterpret_cast<uint4*>(&ks[j][cc * 8]) = kraw;
    *reinterpret_cast<uint4*>(&vs[j][cc * 8]) = vraw;
  }
}

// The row's scores against the tile's keys (the 4 threads of the row add their partial dot
// products), causally masked at qpos; returns their maximum.
template <int D>
__device__ __forceinline__ float TileScores(const float (&qr)[kMineOf<D>][8],
                                            const bf16 (&ks)[kPrefillKeys][D], int part, int k0,
                                            int qpos, float (&s)[kPrefillKeys]) {
  float tile_max = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPrefillKeys; ++j) {
    float dot = 0.f;
#pragma unroll
    for (int i = 0; i < kMineOf<D>; ++i) {
      if (part + 4 * i >= kChunksOf<D>) continue;  // head_dim not a multiple of 32
      float kf[8];
      ChunkToFloat(*reinterpret_cast<const uint4*>(&ks[j][(part + 4 * i) * 8]), kf);
#pragma unroll
      for (int e = 0; e < 8; ++e) dot = fmaf(qr[i][e], kf[e], dot);
    }
    dot += __shfl_xor_sync(kFullMask, dot, 1);
    dot += __shfl_xor_sync(kFullMask, dot, 2);
    s[j] = k0 + j <= qpos ? dot : -INFINITY;  // causal mask
    tile_max = fmaxf(tile_max, s[j]);
  }
  return tile_max;
}

// Online softmax (log2 domain): rescales l and the accumulators to the new maximum m_new,
// then adds the tile's weights exp2(s - m_new) to l and their weighted V rows to acc.
// Returns the new l.
template <int D>
__device__ __forceinline__ float AccumulateTile(const float (&s)[kPrefillKeys],
                                                const bf16 (&vs)[kPrefillKeys][D], int part,
                                                float m, float m_new, float l,
                                                float (&acc)[kMineOf<D>][8]) {
  const float alpha = exp2f(m - m_new);
  l *= alpha;
#pragma unroll
  for (int i = 0; i < kMineOf<D>; ++i) {
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[i][e] *= alpha;
  }
#pragma unroll
  for (int j = 0; j < kPrefillKeys; ++j) {
    const float w = exp2f(s[j] - m_new);
    l += w;
#pragma unroll
    for (int i = 0; i < kMineOf<D>; ++i) {
      if (part + 4 * i >= kChunksOf<D>) continue;
      float vf[8];
      ChunkToFloat(*reinterpret_cast<const uint4*>(&vs[j][(part + 4 * i) * 8]), vf);
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[i][e] = fmaf(w, vf[e], acc[i][e]);
    }
  }
  return l;
}

// Block (tile, q head): kPrefillRows query rows of one sequence; thread (r, part) owns row r.
template <int D>
__global__ void __launch_bounds__(kPrefillThreads)
    PrefillKernel(const DeviceStep step, const AttnParams p) {
  PdlLaunchDependents();
  PdlWait();  // q and the KV cache come from the kernels before (dependent_launch.cuh)
  int seq = 0, tile = 0, ntiles = 0;
  if (!FindPrefillTile(step, blockIdx.x, 1, kPrefillRows, &seq, &tile, &ntiles)) return;
  tile = ntiles - 1 - tile;  // a sequence's last tiles see the most keys: start them first

  const int h = blockIdx.y;
  const int kv_head = h / (p.num_q_heads / p.num_kv_heads);
  const int n = step.seq_num_new[seq];
  const int cached = step.seq_num_cached[seq];
  const int32_t* table = step.block_tables + step.seq_block_begin[seq];
  const int block_size = step.block_size;
  const int64_t kv_width = static_cast<int64_t>(p.num_kv_heads) * D;
  const int r0 = tile * kPrefillRows;
  const int rows_here = min(kPrefillRows, n - r0);
  const int kv_end = cached + r0 + rows_here;  // this block reads positions [0, kv_end)

  const int tid = threadIdx.x;
  const int r = tid / 4;
  const int part = tid % 4;
  const bool valid = r < rows_here;
  // Rows past the sequence's end (last tile) compute a copy of its last row and write nothing.
  const int qpos = cached + r0 + min(r, rows_here - 1);
  const int64_t out_row = step.seq_first_row[seq] + r0 + r;

  __shared__ __align__(16) bf16 ks[kPrefillKeys][D];
  __shared__ __align__(16) bf16 vs[kPrefillKeys][D];

  // The thread's share of its row's query (times scale * log2 e; zeros past the sequence)
  // and zeroed accumulators. This and the write-out stay inline: as functions, their local
  // arrays change the kernel's register counts at some head dims.
  float qr[kMineOf<D>][8];
  float acc[kMineOf<D>][8];
#pragma unroll
  for (int i = 0; i < kMineOf<D>; ++i) {
    float f[8] = {};
    if (valid && part + 4 * i < kChunksOf<D>) {
      ChunkToFloat(
          LoadChunk(p.q + out_row * p.q_stride + static_cast<int64_t>(h) * D + (part + 4 * i) * 8),
          f);
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      qr[i][e] = f[e] * p.scale_log2;
      acc[i][e] = 0.f;
    }
  }
  float m = -INFINITY;
  float l = 0.f;

  for (int k0 = 0; k0 < kv_end; k0 += kPrefillKeys) {
    __syncthreads();  // everyone is done with the previous tile
    LoadKvTile<D>(p, table, block_size, kv_width, kv_head, k0, kv_end, ks, vs);
    __syncthreads();
    float s[kPrefillKeys];
    const float tile_max = TileScores<D>(qr, ks, part, k0, qpos, s);
    // Finite from the first tile on: position 0 is visible to every row.
    const float m_new = fmaxf(m, tile_max);
    l = AccumulateTile<D>(s, vs, part, m, m_new, l, acc);
    m = m_new;
  }

  if (!valid) return;
  // The thread's chunks of the output row, acc / l in bf16.
  const float inv = 1.f / l;
  bf16* o = p.out + (out_row * p.num_q_heads + h) * D;
#pragma unroll
  for (int i = 0; i < kMineOf<D>; ++i) {
    if (part + 4 * i >= kChunksOf<D>) continue;
    float f[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) f[e] = acc[i][e] * inv;
    *reinterpret_cast<uint4*>(o + (part + 4 * i) * 8) = FloatToChunk(f);
  }
}

template <int D>
void LaunchPrefill(dim3 grid, const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  LaunchDependent(PrefillKernel<D>, grid, kPrefillThreads, 0, stream, step, p);
}

}  // namespace

void LaunchPrefillOnCudaCores(const DeviceStep& step, const AttnParams& p, cudaStream_t stream) {
  const int D = p.head_dim;
  const int64_t tiles = std::min<int64_t>(PrefillTileBound(step, 1, kPrefillRows), INT_MAX);
  const dim3 prefill_grid(static_cast<unsigned>(tiles), static_cast<unsigned>(p.num_q_heads));
  switch (D) {
    case 16:
      LaunchPrefill<16>(prefill_grid, step, p, stream);
      break;
    case 32:
      LaunchPrefill<32>(prefill_grid, step, p, stream);
      break;
    case 64:
      LaunchPrefill<64>(prefill_grid, step, p, stream);
      break;
    case 96:
      LaunchPrefill<96>(prefill_grid, step, p, stream);
      break;
    case 128:
      LaunchPrefill<128>(prefill_grid, step, p, stream);
      break;
    case 160:
      LaunchPrefill<160>(prefill_grid, step, p, stream);
      break;
    case 192:
      LaunchPrefill<192>(prefill_grid, step, p, stream);
      break;
    case 224:
      LaunchPrefill<224>(prefill_grid, step, p, stream);
      break;
    case 256:
      LaunchPrefill<256>(prefill_grid, step, p, stream);
      break;
    default:
      break;  // unsupported head_dim (asserted above)
  }
}

}  // namespace sluice::llm::cuda::attention

#pragma once
// What the two tensor-core prefill kernels (attention_prefill_tc.cu's mma.sync kernel and
// attention_prefill_wgmma.cu's wgmma kernel) share: which rows and K/V positions a block
// serves. Internal to the CUDA device's attention.

#include <cstdint>

#include "backends/llm/device/cuda/attention_common.cuh"

namespace sluice::llm::cuda::attention {

// What a block serves: rows [m0, m0 + m_count) of one sequence and kv head (row m: position
// m / group, q head kv_head * group + m % group), reading K/V positions [0, kv_end).
struct TcBlock {
  int group;
  int kv_head;
  int cached;         // the sequence's positions already in the cache
  int units;          // the sequence's rows: its new tokens times group
  int64_t first_row;  // the sequence's first row of q and out
  int m0;
  int m_count;
  int kv_end;
  int num_tiles;       // K/V tiles of kKeys positions
  int unmasked_tiles;  // the first tiles, which every row of the block sees whole
  const int32_t* table;
  int block_size;
  const bf16* k_head;  // the kv head's K and V at cache slot 0
  const bf16* v_head;
  int64_t kv_width;  // elements between cache slots
};

// The block of tile `tile` of sequence seq for kv head kv_head.
// Cfg names the kernel's kD, kRows (rows a block) and kKeys (positions a K/V tile).
template <class Cfg>
__device__ __forceinline__ TcBlock BlockOf(const DeviceStep& step, const AttnParams& p, int group,
                                           int kv_head, int seq, int tile) {
  constexpr int D = Cfg::kD;
  TcBlock b;
  b.group = group;
  b.kv_head = kv_head;
  b.cached = step.seq_num_cached[seq];
  b.units = step.seq_num_new[seq] * group;
  b.first_row = step.seq_first_row[seq];
  b.m0 = tile * Cfg::kRows;
  b.m_count = min(Cfg::kRows, b.units - b.m0);
  b.kv_end = b.cached + (b.m0 + b.m_count - 1) / group + 1;  // last query position + 1
  b.num_tiles = CeilDiv(b.kv_end, Cfg::kKeys);
  b.unmasked_tiles = (b.cached + b.m0 / group + 1) / Cfg::kKeys;  // first query position + 1
  b.table = step.block_tables + step.seq_block_begin[seq];
  b.block_size = step.block_size;
  b.k_head = p.k_cache + static_cast<int64_t>(b.kv_head) * D;
  b.v_head = p.v_cache + static_cast<int64_t>(b.kv_head) * D;
  b.kv_width = static_cast<int64_t>(p.num_kv_heads) * D;
  return b;
}

// What a copy of K/V chunks from the cache needs: the block's kv head's K and V from chunk c
// (8 values) on, and a cache slot's bytes. CopyChunks then turns a cache slot into the two
// sources in one 32 x 32 -> 64-bit multiply-add each (slot and row bytes both fit 32 bits), not
// the 64-bit products, sign handling and adds that a slot * kv_width in int64 takes.
struct SlotChunks {
  const char* k;
  const char* v;
  uint32_t row_bytes;
};

__device__ __forceinline__ SlotChunks SlotChunksOf(const TcBlock& b, int c) {
  return {reinterpret_cast<const char*>(b.k_head + c * 8),
          reinterpret_cast<const char*>(b.v_head + c * 8),
          static_cast<uint32_t>(b.kv_width * sizeof(bf16))};
}

// Copies slot's chunk of K to k_dst and of V to v_dst (shared addresses); slot -1 (a row past
// kv_end) fills both with zeros.
__device__ __forceinline__ void CopyChunks(const SlotChunks& src, int32_t slot, uint32_t k_dst,
                                           uint32_t v_dst) {
  const bool fill = slot >= 0;
  const uint64_t off =
      static_cast<uint64_t>(static_cast<uint32_t>(fill ? slot : 0)) * src.row_bytes;
  CpAsync16(k_dst, src.k + off, fill);
  CpAsync16(v_dst, src.v + off, fill);
}

// Normalises row r of the block (this thread's part: the row_sum of its columns, summed here
// over the quad of lanes that holds the row, which must all call it) and writes it if it is a
// row of the sequence, as bf16 pairs: o(dt, e) is the thread's output of column 8 dt + 2 t4 + e.
template <int D, class Output>
__device__ __forceinline__ void WriteRow(const AttnParams& p, const TcBlock& b, int r, int t4,
                                         float row_sum, Output&& o) {
  float sum = row_sum;
  sum += __shfl_xor_sync(kFullMask, sum, 1);
  sum += __shfl_xor_sync(kFullMask, sum, 2);
  if (r >= b.m_count) return;
  const float inv = 1.f / sum;  // >= 1 before the inverse: the row's maximum contributes 1
  const int m = b.m0 + r;
  bf16* const dst =
      p.out +
      ((b.first_row + m / b.group) * p.num_q_heads + b.kv_head * b.group + m % b.group) * D +
      2 * t4;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    *reinterpret_cast<__nv_bfloat162*>(dst + dt * 8) =
        __floats2bfloat162_rn(o(dt, 0) * inv, o(dt, 1) * inv);
  }
}

}  // namespace sluice::llm::cuda::attention

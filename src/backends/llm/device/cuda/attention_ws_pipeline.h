#pragma once
// The index arithmetic of the warp-specialized wgmma prefill kernel (attention_prefill_ws.cu),
// plain C++ so that a CPU test (attention_ws_pipeline_test.cc) can check it: which 16-byte
// chunks of a K/V tile each thread of the copying warpgroup issues, which phase of a stage's
// barriers tile t waits for, and when the two computing warpgroups wait for and pass their
// turn at the tensor cores. A mistake in any of them shows on a GPU only as wrong numbers or a
// hang.

#include <cstdint>

namespace sluice::llm::cuda::ws {

constexpr int kCopiers = 128;  // the copying warpgroup's threads
constexpr int kLanes = 32;
constexpr int kTileKeys = 128;  // K/V positions a tile: each copying warp takes 32 of them

// A tile is kTileKeys rows (keys) of `chunks` 16-byte chunks (head_dim / 8: 8 or 16). Copier c
// (lane l of warp w) issues `chunks` copies: copy i is chunk l % chunks of key 32 w + l /
// chunks + (32 / chunks) i, so that each instruction of a warp reads 32 / chunks whole rows
// (contiguous 16-byte chunks: coalesced), and the warp's 32 keys are its lanes' cache-slot
// lookups, one a lane (copy i's slot is lane CopySlotLane's).
constexpr int CopyKeysPerStep(int chunks) {
  return kLanes / chunks;
}
constexpr int CopyChunk(int copier, int chunks) {
  return copier % kLanes % chunks;
}
constexpr int CopySlotLane(int copier, int chunks, int i) {
  return copier % kLanes / chunks + CopyKeysPerStep(chunks) * i;
}
constexpr int CopyKey(int copier, int chunks, int i) {
  return copier / kLanes * kLanes + CopySlotLane(copier, chunks, i);
}

// The ring of `stages` stages: tile t lives in stage t % stages. A stage's "full" barrier
// completes its phase k when the k-th tile it holds (t / stages = k) has landed; its "empty"
// barrier completes phase k when both computing warpgroups are done with that tile. A wait
// names the parity of the phase it waits for (mbarrier.try_wait.parity), which is unambiguous
// as neither barrier can run two phases ahead of a waiter: a stage is refilled only after its
// tile was released, and released only after it was filled.
constexpr int StageOf(int t, int stages) {
  return t % stages;
}
// Computing warpgroups, before tile t's products.
constexpr uint32_t FullParity(int t, int stages) {
  return static_cast<uint32_t>(t / stages) & 1u;
}
// The copying warpgroup, before it writes tile t >= stages over tile t - stages.
constexpr uint32_t EmptyParity(int t, int stages) {
  return static_cast<uint32_t>((t - stages) / stages) & 1u;
}

// The turns (schedule 3): computing warpgroup wg (0 or 1) waits at its own named barrier before
// issuing tile t's products and, once they are issued, passes the turn at the other's
// barrier. Warpgroup 0 goes first, so it does not wait on tile 0, and warpgroup 1 does not pass
// after its last tile, as no one waits for that: every barrier phase then has both sides (128
// threads waiting, 128 arriving) and none is left half-arrived when the block exits. Both
// warpgroups run every tile of the block (one with nothing to compute still takes its turn).
constexpr int kTurnBarrier = 1;  // warpgroup wg's is named barrier 1 + wg (0 is __syncthreads)
constexpr bool WaitsForTurn(int wg, int t) {
  return !(wg == 0 && t == 0);
}
constexpr bool PassesTurn(int wg, int t, int tiles) {
  return !(wg == 1 && t == tiles - 1);
}

}  // namespace sluice::llm::cuda::ws

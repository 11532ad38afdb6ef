#pragma once
// Hopper's asynchronous-copy synchronisation (sm_90a code only): mbarriers (8-byte shared-memory
// barrier objects with a phase, an expected arrival count and a transaction byte count), named
// barriers, register reallocation between warpgroups, the copy engine (TMA) copies that
// complete on an mbarrier: a tensor map's box (cp.async.bulk.tensor, swizzled as wgmma reads
// it) and a plain run of bytes (cp.async.bulk), and a thread block cluster's barrier and
// reads of another block's shared memory (distributed shared memory). The warp-specialized prefill
// attention (attention_prefill_ws.cu) and the Hopper GPTQ GEMM (gptq_gemm90.cu) use them. Compiles
// on every architecture; the instructions exist only in code compiled for sm_90a
// (__CUDA_ARCH_FEAT_SM90_ALL), elsewhere the functions are empty (as wgmma.cuh's), and the
// host launches their callers only on a compute capability 9.0 device. Internal to the CUDA
// device's kernels.

#include <cuda.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace sluice::llm::cuda {

__device__ __forceinline__ void MbarrierInit(uint32_t bar, uint32_t arrivals) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
#endif
}
// Makes the initialised barriers visible to the other threads and to the copies' arrivals
// (before the block's barrier that follows).
__device__ __forceinline__ void FenceMbarrierInit() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
#endif
}
// Returns once the phase of the given parity has completed (acquire: what the arrivals and the
// copies completing on it released is visible).
__device__ __forceinline__ void MbarrierWait(uint32_t bar, uint32_t parity) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "LAB_WAIT:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@done bra DONE;\n"
      "bra LAB_WAIT;\n"
      "DONE:\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
#endif
}
__device__ __forceinline__ void MbarrierArrive(uint32_t bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n"
      ".reg .b64 state;\n"
      "mbarrier.arrive.shared::cta.b64 state, [%0];\n"
      "}\n" ::"r"(bar)
      : "memory");
#endif
}
// One arrival that also expects `bytes` more of copies completing on `bar` in this phase: the
// phase ends once every arrival is in and every byte has landed.
__device__ __forceinline__ void MbarrierArriveExpectTx(uint32_t bar, uint32_t bytes) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n"
      ".reg .b64 state;\n"
      "mbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n"
      "}\n" ::"r"(bar),
      "r"(bytes)
      : "memory");
#endif
}
// One arrival on `bar` once every cp.async this thread has issued so far has landed; .noinc:
// the arrival counts against the barrier's expected count.
__device__ __forceinline__ void CpAsyncArriveOn(uint32_t bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
#endif
}
__device__ __forceinline__ void NamedBarrierSync(int id, int threads) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#endif
}
__device__ __forceinline__ void NamedBarrierArrive(int id, int threads) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
#endif
}
template <int kRegisters>
__device__ __forceinline__ void ReleaseRegisters() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
#endif
}
template <int kRegisters>
__device__ __forceinline__ void ClaimRegisters() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
#endif
}

// The copy engine's copy of the box at (c0, c1) (elements of the innermost dimension, then rows)
// of the 2-D tensor map `map` (a kernel parameter, __grid_constant__) to `dst`, in the map's
// swizzle; elements past the tensor's bounds arrive as zeros. Its bytes (the whole box's)
// complete on `bar`.
__device__ __forceinline__ void TmaLoad2d(uint32_t dst, const CUtensorMap* map, int c0, int c1,
                                          uint32_t bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(bar)
      : "memory");
#endif
}
// `bytes` (a multiple of 16; both addresses 16-byte aligned) from global memory to `dst` by the
// copy engine, completing on `bar`.
__device__ __forceinline__ void BulkCopy(uint32_t dst, const void* src, uint32_t bytes,
                                         uint32_t bar) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::
          "r"(dst),
      "l"(src), "r"(bytes), "r"(bar)
      : "memory");
#endif
}

// Thread block clusters (a grid launched with cudaLaunchAttributeClusterDimension; without
// one, each block is a cluster of its own). The block's rank in its cluster and the cluster's
// blocks (1 off sm_90a: no cluster code runs there).
__device__ __forceinline__ uint32_t ClusterRank() {
  uint32_t r = 0;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return r;
}
__device__ __forceinline__ uint32_t ClusterBlocks() {
  uint32_t n = 1;
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("mov.u32 %0, %%cluster_nctarank;\n" : "=r"(n));
#endif
  return n;
}
// Every thread of every block of the cluster (exited ones aside: keep them all until the last
// one) meets here; what each wrote before is visible to every other after (release, acquire).
__device__ __forceinline__ void ClusterSync() {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("barrier.cluster.arrive.release;\nbarrier.cluster.wait.acquire;\n" ::: "memory");
#endif
}
// Four floats at shared address `addr` of this block, read from the same address of the
// cluster's block `rank` (which must not exit before the read: a ClusterSync after it).
__device__ __forceinline__ float4 ClusterLoad4(uint32_t addr, uint32_t rank) {
  float4 v{0.f, 0.f, 0.f, 0.f};
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  uint32_t remote = 0;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(addr), "r"(rank));
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote)
               : "memory");
#endif
  return v;
}

}  // namespace sluice::llm::cuda

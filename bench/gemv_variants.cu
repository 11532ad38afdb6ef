// Batch-1 GEMV variants at Qwen2-7B's shapes (down, o, q|k|v, gate|up), each timed as 48
// launches in one CUDA graph with dependent launches (as a decode step runs them), weights
// cycled through >= 640 MB of copies so that no launch reads them from L2. A design
// exploration for src/backends/llm/device/cuda/gemv.cu, standalone on purpose: it varies
// columns a warp (C), 16-byte loads in flight a row (U), warps a block (W), x from shared
// memory (XS), K splits (S, partial sums met by each row group's last block) and the load's
// cache hints (PF). Output: us a launch, TB/s of weights, and the largest difference from the
// first variant's output. `ncu` as an argument runs only the down projection, 4 launches a
// variant, for Nsight Compute. Results: bench/RESULTS.md.
//
//   nvcc -O3 -std=c++17 -gencode arch=compute_90,code=sm_90 bench/gemv_variants.cu -o gemv_variants
//   ./gemv_variants            # NOPDL=1 launches without the dependent-launch attribute
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
#include <cmath>

using bf16 = __nv_bfloat16;
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("CUDA %s at %d\n", cudaGetErrorString(e), __LINE__); exit(1);} } while (0)

__device__ __forceinline__ void LaunchDeps() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void Wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }

__device__ __forceinline__ void Unpack(const uint4& v, float (&f)[8]) {
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) { const float2 p = __bfloat1622float2(h[i]); f[2*i] = p.x; f[2*i+1] = p.y; }
}

template <int PF>
__device__ __forceinline__ uint4 LoadW(const uint4* p) {
  if constexpr (PF == 0) return __ldcs(p);
  uint4 v;
  if constexpr (PF == 1)
    asm volatile("ld.global.cs.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  else if constexpr (PF == 2)
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  else
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
  return v;
}

// C columns a warp, U loads in flight a row, W warps a block, XS: x from smem, S: K splits
// (partials to part[s][out], reduced by the last block of the row group), PF: load flavour.
template <int C, int U, int W, int XS, int S, int PF>
__global__ void __launch_bounds__(W * 32) Gemv(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                               int in, int out, float* part, unsigned* counters,
                                               bf16* __restrict__ y) {
  extern __shared__ uint4 xsm[];
  LaunchDeps();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = blockIdx.x / S, s = blockIdx.x % S;
  const int n0 = (g * W + warp) * C;
  const int len = in / S, k0 = s * len;
  const int chunks = len / 8;
  const uint4* wr[C];
#pragma unroll
  for (int c = 0; c < C; ++c) {
    const int n = n0 + c < out ? n0 + c : (n0 < out ? n0 : 0);
    wr[c] = reinterpret_cast<const uint4*>(w + (long)n * in + k0);
  }
  float acc[C];
#pragma unroll
  for (int c = 0; c < C; ++c) acc[c] = 0.f;
  uint4 wv[C][U];
  auto round = [&](int c0) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ch = c0 + u * 32;
#pragma unroll
      for (int c = 0; c < C; ++c) wv[c][u] = ch < chunks ? LoadW<PF>(wr[c] + ch) : make_uint4(0,0,0,0);
    }
  };
  round(lane);
  Wait();
  const uint4* xg = reinterpret_cast<const uint4*>(x + k0);
  if constexpr (XS) {
    for (int i = threadIdx.x; i < chunks; i += W * 32) xsm[i] = __ldg(xg + i);
    __syncthreads();
  }
  for (int c0 = lane; c0 < chunks; c0 += 32 * U) {
    if (c0 != lane) round(c0);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int ch = c0 + u * 32;
      if (ch >= chunks) break;
      float xf[8];
      Unpack(XS ? xsm[ch] : __ldg(xg + ch), xf);
#pragma unroll
      for (int c = 0; c < C; ++c) {
        float wf[8]; Unpack(wv[c][u], wf);
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[c] = fmaf(wf[e], xf[e], acc[c]);
      }
    }
  }
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) acc[c] += __shfl_xor_sync(0xffffffffu, acc[c], off);
  if constexpr (S == 1) {
    if (lane == 0)
#pragma unroll
      for (int c = 0; c < C; ++c) if (n0 + c < out) y[n0 + c] = __float2bfloat16_rn(acc[c]);
  } else {
    if (lane == 0)
#pragma unroll
      for (int c = 0; c < C; ++c) if (n0 + c < out) part[(long)s * out + n0 + c] = acc[c];
    __shared__ bool last;
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
      const unsigned prev = atomicAdd(&counters[g], 1u);
      last = prev == S - 1;
      if (last) counters[g] = 0;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    const int t = threadIdx.x;
    if (t < W * C) {
      const int n = g * W * C + t;
      if (n < out) {
        float v = 0.f;
        for (int q = 0; q < S; ++q) v += __ldcg(part + (long)q * out + n);
        y[n] = __float2bfloat16_rn(v);
      }
    }
  }
}

// Plain copy kernel: read-only stream to measure achievable read bandwidth.
__global__ void ReadAll(const uint4* __restrict__ p, size_t n, float* sink) {
  float a = 0.f;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint4 v = __ldcs(p + i); a += __uint_as_float(v.x ^ v.y ^ v.z ^ v.w);
  }
  if (a == 1.2345f) *sink = a;
}

struct Variant {
  std::string name;
  void (*k)(const bf16*, const bf16*, int, int, float*, unsigned*, bf16*);
  int C, W, S, XS;
};

#define V(C, U, W, XS, S, PF) Variant{"C" #C " U" #U " W" #W " XS" #XS " S" #S " PF" #PF, Gemv<C, U, W, XS, S, PF>, C, W, S, XS}

int main(int argc, char** argv) {
  const bool pdl = getenv("NOPDL") == nullptr;
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("%s SMs %d L2 %d MB pdl %d\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, pdl);
  std::vector<Variant> vars = {
      V(2, 4, 4, 0, 1, 0), V(2, 4, 4, 1, 1, 0), V(2, 4, 4, 0, 1, 1), V(2, 4, 4, 0, 1, 2), V(2, 4, 4, 0, 1, 3),
      V(1, 8, 4, 0, 1, 0), V(4, 2, 4, 0, 1, 0), V(4, 4, 4, 0, 1, 0), V(2, 8, 4, 0, 1, 0), V(2, 4, 8, 0, 1, 0),
      V(2, 4, 2, 0, 1, 0), V(2, 4, 4, 0, 2, 0), V(2, 4, 4, 0, 4, 0), V(2, 4, 4, 1, 4, 0), V(2, 4, 4, 0, 8, 0),
      V(4, 4, 4, 1, 4, 1), V(2, 4, 4, 1, 2, 1), V(2, 2, 4, 0, 4, 0), V(4, 2, 4, 0, 2, 0), V(2, 6, 4, 0, 1, 0),
  };
  struct Shape { const char* name; int out, in; };
  std::vector<Shape> shapes = {{"down", 3584, 18944}, {"o", 3584, 3584}, {"qkv", 4608, 3584}, {"gateup", 37888, 3584}};
  if (argc > 1 && !strcmp(argv[1], "ncu")) shapes.resize(1);
  float* sink; CK(cudaMalloc(&sink, 4));
  // read bandwidth
  {
    size_t bytes = 1ull << 30; uint4* p; CK(cudaMalloc(&p, bytes)); CK(cudaMemset(p, 1, bytes));
    cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
    ReadAll<<<prop.multiProcessorCount * 8, 512>>>(p, bytes / 16, sink);
    cudaEventRecord(a); for (int i = 0; i < 10; ++i) ReadAll<<<prop.multiProcessorCount * 8, 512>>>(p, bytes / 16, sink);
    cudaEventRecord(b); CK(cudaEventSynchronize(b)); float ms; cudaEventElapsedTime(&ms, a, b);
    printf("read-only stream: %.3f TB/s\n", 10.0 * bytes / (ms * 1e-3) / 1e12);
    CK(cudaFree(p));
  }
  for (const Shape& sh : shapes) {
    const size_t wbytes = (size_t)sh.out * sh.in * 2;
    const int copies = std::max<int>(2, (int)((640ull << 20) / wbytes + 1));
    bf16* w; CK(cudaMalloc(&w, wbytes * copies));
    {  // random-ish weights
      std::vector<bf16> h(wbytes / 2);
      unsigned st = 12345;
      for (auto& v : h) { st = st * 1664525u + 1013904223u; v = __float2bfloat16(((st >> 9) / 8388608.f - 0.5f) * 0.1f); }
      for (int c = 0; c < copies; ++c) CK(cudaMemcpy((char*)w + c * wbytes, h.data(), wbytes, cudaMemcpyHostToDevice));
    }
    std::vector<bf16> hx(sh.in); for (int i = 0; i < sh.in; ++i) hx[i] = __float2bfloat16(sinf(i * 0.37f));
    bf16 *x, *y; CK(cudaMalloc(&x, sh.in * 2)); CK(cudaMalloc(&y, sh.out * 2));
    CK(cudaMemcpy(x, hx.data(), sh.in * 2, cudaMemcpyHostToDevice));
    float* part; CK(cudaMalloc(&part, 8ull * sh.out * 4));
    unsigned* counters; CK(cudaMalloc(&counters, 65536 * 4)); CK(cudaMemset(counters, 0, 65536 * 4));
    std::vector<bf16> ref(sh.out), got(sh.out);
    cudaStream_t st; CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    const int launches = 48;
    for (size_t vi = 0; vi < vars.size(); ++vi) {
      const Variant& v = vars[vi];
      if (v.S > 1 && (sh.in / v.S) % 8) continue;
      const int per_block = v.W * v.C;
      const int groups = (sh.out + per_block - 1) / per_block;
      const size_t smem = v.XS ? (size_t)sh.in / v.S * 2 : 0;
      if (smem > 48 * 1024) CK(cudaFuncSetAttribute(v.k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
      auto launch = [&](int i) {
        cudaLaunchAttribute attr{}; attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr.val.programmaticStreamSerializationAllowed = 1;
        cudaLaunchConfig_t cfg{}; cfg.gridDim = dim3(groups * v.S); cfg.blockDim = dim3(v.W * 32);
        cfg.dynamicSmemBytes = smem; cfg.stream = st; cfg.attrs = &attr; cfg.numAttrs = pdl ? 1 : 0;
        const bf16* wi = (const bf16*)((const char*)w + (size_t)(i % copies) * wbytes);
        CK(cudaLaunchKernelEx(&cfg, v.k, (const bf16*)x, wi, sh.in, sh.out, part, counters, y));
      };
      launch(0); CK(cudaStreamSynchronize(st));
      CK(cudaMemcpy(vi == 0 ? ref.data() : got.data(), y, sh.out * 2, cudaMemcpyDeviceToHost));
      float maxd = 0;
      if (vi) for (int i = 0; i < sh.out; ++i) maxd = fmaxf(maxd, fabsf(__bfloat162float(ref[i]) - __bfloat162float(got[i])));
      if (argc > 1 && !strcmp(argv[1], "ncu")) { for (int i = 0; i < 3; ++i) launch(i); CK(cudaStreamSynchronize(st)); continue; }
      cudaGraph_t graph; cudaGraphExec_t exec;
      CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
      for (int i = 0; i < launches; ++i) launch(i);
      CK(cudaStreamEndCapture(st, &graph)); CK(cudaGraphInstantiate(&exec, graph, 0));
      CK(cudaGraphLaunch(exec, st)); CK(cudaStreamSynchronize(st));
      cudaEvent_t a, b; cudaEventCreate(&a); cudaEventCreate(&b);
      float best = 1e9;
      for (int rep = 0; rep < 5; ++rep) {
        cudaEventRecord(a, st); CK(cudaGraphLaunch(exec, st)); cudaEventRecord(b, st);
        CK(cudaEventSynchronize(b)); float ms; cudaEventElapsedTime(&ms, a, b); best = fminf(best, ms);
      }
      const double us = best * 1e3 / launches;
      printf("%-7s %-28s %8.2f us  %6.3f TB/s  maxdiff %.3g\n", sh.name, v.name.c_str(), us, wbytes / (us * 1e-6) / 1e12, maxd);
      cudaGraphExecDestroy(exec); cudaGraphDestroy(graph);
    }
    cudaFree(w); cudaFree(x); cudaFree(y); cudaFree(part); cudaFree(counters); cudaStreamDestroy(st);
  }
  return 0;
}

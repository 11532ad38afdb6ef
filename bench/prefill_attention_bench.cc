// prefill_attention_bench: times the CUDA device's prefill attention (cuda::Attention, one
// sequence of S new tokens over the paged KV cache) with the CUDA-core kernel, the mma.sync
// tensor-core kernel (PrefillPath::kMmaSync) and the default path (kAuto: on an sm_90 device
// at head_dim 64 and 128 the wgmma kernel, unless SLUICE_CUDA_PREFILL_WGMMA=0), at Qwen2-7B's heads
// by default (28 q heads, 4 kv heads, head_dim 128) and the engine's block size (16), on a shuffled
// block table. Each figure is the median of
// --iters runs timed with CUDA events around one Attention() call; TFLOP/s counts the causal
// FLOPs 4 * S^2 / 2 * head_dim * q_heads. It also reports how far the two kernels' outputs are
// apart (||tc - cuda_cores|| / ||cuda_cores|| over the whole output, for the default path's
// kernel; and default against mma.sync), as a sanity check; the kernel tests
// (cuda_kernels_test) are the correctness check. --no-cuda-cores skips the slow CUDA-core
// kernel (rel_diff then compares with mma.sync too). --schedules 1,2,3,4,5 also times each named
// wgmma schedule (SLUICE_CUDA_PREFILL_WGMMA's values, cuda_tuning.h) in the same run, a line
// each under the length's row: time, TFLOP/s, speedup over mma.sync and the distance from its
// output (on a device other than sm_90 they run the mma.sync kernel). Built with the CUDA tests.
//
//   prefill_attention_bench                      # S = 1800 7000 20000 32000
//   prefill_attention_bench --iters 5 --no-cuda-cores 1800 7000 20000 32000
//   prefill_attention_bench --iters 5 --cached 1000 4096 16384
//   prefill_attention_bench --iters 5 --no-cuda-cores --schedules 1,3,5 1800 7000 20000 32000
//   prefill_attention_bench --q-heads 32 --kv-heads 8 --head-dim 64 2048
//
// --decode times decode attention instead: --batch sequences of one new token each over a
// context of C tokens (the lengths are contexts), with the grid bound a graph replay has
// (--bound, the model's length, default 32768); it reports microseconds per call and the
// bandwidth of the K/V rows read. --graph times the call as a replayed CUDA graph (as the
// model's decode steps run it: no launch overhead on the host); --cold overwrites a 256 MB
// buffer before each timed call, so that the K/V rows come from HBM, not from the L2 cache
// where the previous call left them (a model's step reads the weights of 28 layers between
// one layer's attention and the next step's). SLUICE_CUDA_DECODE_PIPELINE=0 selects the
// previous decode kernel. Each context's row times decode attention alone with CombineKernel
// and with the fused merge, and a layer's attention ops as RopeKvWrite then Attention (with
// CombineKernel) and as RopeKvWriteAttention (one launch), in one run on one machine.
//   prefill_attention_bench --decode --batch 1 512 2048 8192 32000
//   prefill_attention_bench --decode --graph --cold --batch 32 512 4096
//   prefill_attention_bench --decode --graph --batch 1 128 512 2048 32000

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cuda/kernels.h"
#include "bench/cuda_bench_util.h"

namespace {

using sluice::bench::Upload;
using sluice::llm::cuda::AttentionShape;
using sluice::llm::cuda::bf16;
using sluice::llm::cuda::DeviceStep;
using sluice::llm::cuda::PrefillPath;

// n bf16 values uniform in [-1, 1) from a cheap generator (the bench needs ~10^8 of them).
std::vector<bf16> RandomBf16(size_t n, uint64_t seed) {
  std::vector<bf16> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const float f = static_cast<float>(x >> 40) * (2.f / 16777216.f) - 1.f;
    v[i] = __float2bfloat16(f);
  }
  return v;
}

struct Options {
  int q_heads = 28;
  int kv_heads = 4;
  int head_dim = 128;
  int block_size = 16;
  int iters = 10;
  int cached = 0;
  bool decode = false;
  int batch = 1;
  int bound = 32768;
  bool graph = false;
  bool cold = false;
  bool cuda_cores = true;
  std::vector<int> schedules;  // wgmma schedules timed by name, 1 to 5
  std::vector<int> lengths;
};

// The path that runs wgmma schedule w (1 to 5) whatever SLUICE_CUDA_PREFILL_WGMMA says.
PrefillPath WgmmaPath(int w) {
  constexpr PrefillPath kPaths[] = {PrefillPath::kWgmmaInSequence, PrefillPath::kWgmmaOverlapped,
                                    PrefillPath::kWgmmaWarpSpecialized,
                                    PrefillPath::kWgmmaWarpSpecializedNoPingPong,
                                    PrefillPath::kWgmmaWarpSpecializedOverlapped};
  return kPaths[w - 1];
}

void Usage() {
  std::fprintf(stderr,
               "usage: prefill_attention_bench [--q-heads N] [--kv-heads N] [--head-dim N] "
               "[--block-size N] [--iters N] [--cached N] [--no-cuda-cores] [--schedules W,...] "
               "[--decode [--batch N] [--bound N] [--graph] [--cold]] "
               "[S ...]\n");
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> int {
      if (i + 1 >= argc) Usage();
      return std::atoi(argv[++i]);
    };
    if (a == "--q-heads") {
      o.q_heads = next();
    } else if (a == "--kv-heads") {
      o.kv_heads = next();
    } else if (a == "--head-dim") {
      o.head_dim = next();
    } else if (a == "--block-size") {
      o.block_size = next();
    } else if (a == "--iters") {
      o.iters = next();
    } else if (a == "--cached") {
      o.cached = next();
    } else if (a == "--decode") {
      o.decode = true;
    } else if (a == "--batch") {
      o.batch = next();
    } else if (a == "--bound") {
      o.bound = next();
    } else if (a == "--graph") {
      o.graph = true;
    } else if (a == "--cold") {
      o.cold = true;
    } else if (a == "--no-cuda-cores") {
      o.cuda_cores = false;
    } else if (a == "--schedules") {
      if (i + 1 >= argc) Usage();
      for (const char* c = argv[++i]; *c != '\0'; ++c) {
        if (*c < '1' || *c > '5' || (c[1] != ',' && c[1] != '\0')) Usage();
        o.schedules.push_back(*c - '0');
        if (c[1] == ',') ++c;
      }
    } else if (!a.empty() && a[0] != '-') {
      o.lengths.push_back(std::atoi(a.c_str()));
    } else {
      Usage();
    }
  }
  if (o.lengths.empty()) {
    o.lengths = o.decode ? std::vector<int>{512, 2048, 8192, 20000, 32000}
                         : std::vector<int>{1800, 7000, 20000, 32000};
  }
  if (o.batch <= 0 || o.bound <= 0 || o.q_heads <= 0 || o.kv_heads <= 0 ||
      o.q_heads % o.kv_heads != 0 || o.block_size <= 0 || o.iters <= 0 || o.cached < 0) {
    Usage();
  }
  return o;
}

// ||b - a|| / ||a|| of two device outputs of n bf16 (NaN if either has a NaN).
double RelDiff(const bf16* a, const bf16* b, size_t n) {
  const std::vector<bf16> host_a = sluice::bench::Download(a, n),
                          host_b = sluice::bench::Download(b, n);
  double diff = 0, norm = 0;
  for (size_t i = 0; i < n; ++i) {
    const double x = __bfloat162float(host_a[i]);
    const double y = __bfloat162float(host_b[i]);
    diff += (x - y) * (x - y);
    norm += x * x;
  }
  return std::sqrt(diff / norm);
}

// Median milliseconds of one Attention() call over `iters` runs (after two warm-up runs);
// `before` runs on the stream ahead of each, untimed.
template <typename Fn, typename Before = void (*)()>
double MedianMs(
    int iters, cudaStream_t stream, Fn&& run, Before&& before = [] {}) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 2; ++i) run();
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    before();
    CHECK_CUDA(cudaEventRecord(start, stream));
    run();
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    CHECK_CUDA(cudaGetLastError());
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// --decode's step: o.batch sequences, each one new token over `context` tokens (own shuffled
// blocks), with the new rows' q, k and v and a rope table, as the model's layer has them.
struct DecodeStep {
  DeviceStep step;
  bf16* q = nullptr;
  bf16* k = nullptr;
  bf16* v = nullptr;
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
  float* inv_freq = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  bf16* out = nullptr;
  std::vector<void*> owned;

  DecodeStep(const Options& o, const AttentionShape& shape, int context, std::mt19937_64& rng) {
    const int64_t out_width = static_cast<int64_t>(o.q_heads) * o.head_dim;
    const int64_t kv_width = static_cast<int64_t>(o.kv_heads) * o.head_dim;
    const int per_seq = (context + o.block_size - 1) / o.block_size;
    const int num_blocks = per_seq * o.batch;
    std::vector<int32_t> table(num_blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    std::vector<int32_t> positions, slots, row_seq, first_row, num_new, num_cached, block_begin;
    for (int b = 0; b < o.batch; ++b) {
      const int pos = context - 1;
      positions.push_back(pos);
      slots.push_back(table[b * per_seq + pos / o.block_size] * o.block_size + pos % o.block_size);
      row_seq.push_back(b);
      first_row.push_back(b);
      num_new.push_back(1);
      num_cached.push_back(context - 1);
      block_begin.push_back(b * per_seq);
    }
    const size_t cache_elems = static_cast<size_t>(num_blocks) * o.block_size * kv_width;
    q = Own(Upload(RandomBf16(static_cast<size_t>(o.batch) * out_width, 1)));
    k = Own(Upload(RandomBf16(static_cast<size_t>(o.batch) * kv_width, 4)));
    v = Own(Upload(RandomBf16(static_cast<size_t>(o.batch) * kv_width, 5)));
    k_cache = Own(Upload(RandomBf16(cache_elems, 2)));
    v_cache = Own(Upload(RandomBf16(cache_elems, 3)));
    std::vector<float> inv(o.head_dim / 2);
    for (int i = 0; i < o.head_dim / 2; ++i) {
      inv[i] = 1.f / std::pow(1e6f, 2.f * static_cast<float>(i) / static_cast<float>(o.head_dim));
    }
    inv_freq = Own(Upload(inv));
    step.tokens = Own(Upload(std::vector<int32_t>(o.batch, 0)));
    step.positions = Own(Upload(positions));
    step.slots = Own(Upload(slots));
    step.row_seq = Own(Upload(row_seq));
    step.seq_first_row = Own(Upload(first_row));
    step.seq_num_new = Own(Upload(num_new));
    step.seq_num_cached = Own(Upload(num_cached));
    step.seq_block_begin = Own(Upload(block_begin));
    step.block_tables = Own(Upload(table));
    step.rows = o.batch;
    step.num_seqs = o.batch;
    step.block_size = o.block_size;
    step.max_num_new = 1;
    step.max_context = std::max(context, o.bound);
    ws_bytes = sluice::llm::cuda::AttentionWorkspaceBytes(step, shape);
    CHECK_CUDA(cudaMalloc(&ws, std::max<size_t>(ws_bytes, 1)));
    CHECK_CUDA(cudaMemset(ws, 0, ws_bytes));  // the fused decode merge's counters start at 0
    owned.push_back(ws);
    CHECK_CUDA(cudaMalloc(&out, static_cast<size_t>(o.batch) * out_width * sizeof(bf16)));
    owned.push_back(out);
  }
  ~DecodeStep() {
    for (void* ptr : owned) cudaFree(ptr);
  }
  DecodeStep(const DecodeStep&) = delete;
  DecodeStep& operator=(const DecodeStep&) = delete;

  template <typename T>
  T* Own(T* ptr) {
    owned.push_back(const_cast<void*>(static_cast<const void*>(ptr)));
    return ptr;
  }
};

// Median microseconds of `issue` (one layer's attention ops), replayed as a graph with --graph.
template <typename Fn, typename Before>
double TimeDecodeUs(const Options& o, cudaStream_t stream, Fn&& issue, Before&& before) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  if (o.graph) {
    CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    issue();
    CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
    CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  }
  const double ms = MedianMs(
      o.iters, stream,
      [&] {
        if (o.graph) {
          CHECK_CUDA(cudaGraphLaunch(exec, stream));
        } else {
          issue();
        }
      },
      before);
  if (o.graph) {
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  return ms * 1e3;
}

// --decode: per context, decode attention alone with CombineKernel (attn_sep, today's figure)
// and with the fused merge (attn_fused); and a layer's attention ops as the model issues them:
// RopeKvWrite then Attention with CombineKernel (rope+attn, three launches before this work),
// and RopeKvWriteAttention with the fused merge (one launch). bandwidth: attn_sep's.
void RunDecode(const Options& o, cudaStream_t stream) {
  using sluice::llm::cuda::DecodeCombine;
  const AttentionShape shape{o.q_heads, o.kv_heads, o.head_dim,
                             1.f / std::sqrt(static_cast<float>(o.head_dim))};
  const int64_t out_width = static_cast<int64_t>(o.q_heads) * o.head_dim;
  const int64_t kv_width = static_cast<int64_t>(o.kv_heads) * o.head_dim;
  const char* pipeline = std::getenv("SLUICE_CUDA_DECODE_PIPELINE");
  std::printf("decode: batch %d, grid bound %d, SLUICE_CUDA_DECODE_PIPELINE %s, %s, %s\n", o.batch,
              o.bound, pipeline != nullptr ? pipeline : "(unset)",
              o.graph ? "graph replay" : "stream launch", o.cold ? "cold L2" : "warm L2");
  constexpr size_t kFlushBytes = size_t{256} << 20;
  void* flush = nullptr;
  if (o.cold) CHECK_CUDA(cudaMalloc(&flush, kFlushBytes));
  int flushes = 0;
  auto before = [&] {
    if (o.cold) CHECK_CUDA(cudaMemsetAsync(flush, ++flushes & 0xff, kFlushBytes, stream));
  };
  std::printf("%8s %10s %10s %10s %12s %10s %10s\n", "context", "attn_sep", "attn_fused",
              "rope+attn", "fused_1op", "kv_MB", "GB/s");
  std::mt19937_64 rng(12345);
  for (const int context : o.lengths) {
    if (context < 1) continue;
    DecodeStep d(o, shape, context, rng);
    auto attention = [&](DecodeCombine combine) {
      sluice::llm::cuda::Attention(d.q, static_cast<int32_t>(out_width), d.k_cache, d.v_cache,
                                   d.step, shape, d.ws, d.ws_bytes, d.out, stream,
                                   PrefillPath::kAuto, combine);
    };
    const double sep = TimeDecodeUs(
        o, stream, [&] { attention(DecodeCombine::kSeparate); }, before);
    const double fused = TimeDecodeUs(
        o, stream, [&] { attention(DecodeCombine::kFused); }, before);
    const double layer = TimeDecodeUs(
        o, stream,
        [&] {
          sluice::llm::cuda::RopeKvWrite(d.q, d.k, d.v, d.step.positions, d.inv_freq, d.step.slots,
                                         o.batch, o.q_heads, o.kv_heads, o.head_dim, d.k_cache,
                                         d.v_cache, stream);
          attention(DecodeCombine::kSeparate);
        },
        before);
    double one_op = 0;
    if (sluice::llm::cuda::RopeKvWriteAttentionFits(d.step, shape)) {
      one_op = TimeDecodeUs(
          o, stream,
          [&] {
            sluice::llm::cuda::RopeKvWriteAttention(d.q, d.k, d.v, d.inv_freq, d.k_cache, d.v_cache,
                                                    d.step, shape, d.ws, d.ws_bytes, d.out, stream);
          },
          before);
    }
    const double mb = 2.0 * o.batch * context * kv_width * sizeof(bf16) / 1e6;
    std::printf("%8d %10.1f %10.1f %10.1f %12.1f %10.1f %10.0f%s\n", context, sep, fused, layer,
                one_op, mb, mb / (sep * 1e-3), one_op > 0 ? "" : "  (fused_1op: shape unfit)");
    std::fflush(stdout);
  }
  cudaFree(flush);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  if (o.decode) {
    std::printf("%s (sm_%d%d), q_heads %d kv_heads %d head_dim %d block_size %d, median of %d\n",
                prop.name, prop.major, prop.minor, o.q_heads, o.kv_heads, o.head_dim, o.block_size,
                o.iters);
    cudaStream_t stream = nullptr;
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    RunDecode(o, stream);
    cudaStreamDestroy(stream);
    return 0;
  }
  std::printf(
      "%s (sm_%d%d), q_heads %d kv_heads %d head_dim %d block_size %d cached %d, median "
      "of %d\n",
      prop.name, prop.major, prop.minor, o.q_heads, o.kv_heads, o.head_dim, o.block_size, o.cached,
      o.iters);
  std::printf("%8s %14s %8s %12s %8s %12s %8s %8s %10s %10s\n", "S", "cuda_cores_ms", "TFLOP/s",
              "mma_sync_ms", "TFLOP/s", "default_ms", "TFLOP/s", "speedup", "rel_diff", "vs_mma");
  cudaStream_t stream = nullptr;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const AttentionShape shape{o.q_heads, o.kv_heads, o.head_dim,
                             1.f / std::sqrt(static_cast<float>(o.head_dim))};
  const int64_t out_width = static_cast<int64_t>(o.q_heads) * o.head_dim;
  const int64_t kv_width = static_cast<int64_t>(o.kv_heads) * o.head_dim;
  std::mt19937_64 rng(12345);

  for (const int s : o.lengths) {
    if (s < 2) continue;  // one new token is a decode
    const int context = o.cached + s;
    const int num_blocks = (context + o.block_size - 1) / o.block_size;
    std::vector<int32_t> table(num_blocks);
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    std::vector<int32_t> positions(s), slots(s), row_seq(s, 0), tokens(s, 0);
    for (int j = 0; j < s; ++j) {
      const int pos = o.cached + j;
      positions[j] = pos;
      slots[j] = table[pos / o.block_size] * o.block_size + pos % o.block_size;
    }
    const size_t cache_elems = static_cast<size_t>(num_blocks) * o.block_size * kv_width;
    bf16* q = Upload(RandomBf16(static_cast<size_t>(s) * out_width, 1));
    bf16* k_cache = Upload(RandomBf16(cache_elems, 2));
    bf16* v_cache = Upload(RandomBf16(cache_elems, 3));
    int32_t* d_tokens = Upload(tokens);
    int32_t* d_positions = Upload(positions);
    int32_t* d_slots = Upload(slots);
    int32_t* d_row_seq = Upload(row_seq);
    int32_t* d_first_row = Upload(std::vector<int32_t>{0});
    int32_t* d_num_new = Upload(std::vector<int32_t>{s});
    int32_t* d_num_cached = Upload(std::vector<int32_t>{o.cached});
    int32_t* d_block_begin = Upload(std::vector<int32_t>{0});
    int32_t* d_tables = Upload(table);
    DeviceStep step;
    step.tokens = d_tokens;
    step.positions = d_positions;
    step.slots = d_slots;
    step.row_seq = d_row_seq;
    step.seq_first_row = d_first_row;
    step.seq_num_new = d_num_new;
    step.seq_num_cached = d_num_cached;
    step.seq_block_begin = d_block_begin;
    step.block_tables = d_tables;
    step.rows = s;
    step.num_seqs = 1;
    step.block_size = o.block_size;
    step.max_num_new = s;
    step.max_context = context;
    const size_t ws_bytes = sluice::llm::cuda::AttentionWorkspaceBytes(step, shape);
    void* ws = nullptr;
    CHECK_CUDA(cudaMalloc(&ws, std::max<size_t>(ws_bytes, 1)));
    CHECK_CUDA(cudaMemset(ws, 0, ws_bytes));  // the fused decode merge's counters start at 0
    const size_t out_elems = static_cast<size_t>(s) * out_width;
    bf16* out_cc = nullptr;
    bf16* out_mma = nullptr;
    bf16* out_tc = nullptr;
    for (bf16** out : {&out_cc, &out_mma, &out_tc}) {
      CHECK_CUDA(cudaMalloc(out, out_elems * sizeof(bf16)));
      CHECK_CUDA(cudaMemset(*out, 0xff, out_elems * sizeof(bf16)));  // NaN
    }

    auto run = [&](PrefillPath path, bf16* out) {
      sluice::llm::cuda::Attention(q, static_cast<int32_t>(out_width), k_cache, v_cache, step,
                                   shape, ws, ws_bytes, out, stream, path);
    };
    const double ms_cc =
        o.cuda_cores ? MedianMs(o.iters, stream, [&] { run(PrefillPath::kCudaCores, out_cc); })
                     : NAN;
    const double ms_mma = MedianMs(o.iters, stream, [&] { run(PrefillPath::kMmaSync, out_mma); });
    const double ms_tc = MedianMs(o.iters, stream, [&] { run(PrefillPath::kAuto, out_tc); });
    const double rel = RelDiff(o.cuda_cores ? out_cc : out_mma, out_tc, out_elems);
    const double rel_mma = RelDiff(out_mma, out_tc, out_elems);

    // Causal FLOPs of the new rows (QK^T and PV, 2 FLOPs a multiply-add) over the context.
    const double flops = 4.0 *
                         (static_cast<double>(s) * s / 2 + static_cast<double>(s) * o.cached) *
                         o.head_dim * o.q_heads;
    std::printf("%8d %14.3f %8.1f %12.3f %8.1f %12.3f %8.1f %7.2fx %10.3e %10.3e%s\n", s, ms_cc,
                flops / (ms_cc * 1e9), ms_mma, flops / (ms_mma * 1e9), ms_tc, flops / (ms_tc * 1e9),
                ms_mma / ms_tc, rel, rel_mma,
                rel < 1e-2 && rel_mma < 1e-2 ? "" : "  <-- outputs differ");
    for (const int w : o.schedules) {
      CHECK_CUDA(cudaMemset(out_tc, 0xff, out_elems * sizeof(bf16)));  // NaN
      const double ms = MedianMs(o.iters, stream, [&] { run(WgmmaPath(w), out_tc); });
      const double rel_w = RelDiff(out_mma, out_tc, out_elems);
      std::printf("%8s wgmma schedule %d: %10.3f ms %8.1f TFLOP/s %7.2fx vs_mma %10.3e%s\n", "", w,
                  ms, flops / (ms * 1e9), ms_mma / ms, rel_w,
                  rel_w < 1e-2 ? "" : "  <-- outputs differ");
    }
    std::fflush(stdout);

    for (void* ptr :
         {static_cast<void*>(q), static_cast<void*>(k_cache), static_cast<void*>(v_cache),
          static_cast<void*>(d_tokens), static_cast<void*>(d_positions),
          static_cast<void*>(d_slots), static_cast<void*>(d_row_seq),
          static_cast<void*>(d_first_row), static_cast<void*>(d_num_new),
          static_cast<void*>(d_num_cached), static_cast<void*>(d_block_begin),
          static_cast<void*>(d_tables), ws, static_cast<void*>(out_cc), static_cast<void*>(out_mma),
          static_cast<void*>(out_tc)}) {
      cudaFree(ptr);
    }
  }
  cudaStreamDestroy(stream);
  return 0;
}

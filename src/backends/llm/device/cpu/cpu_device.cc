#include "backends/llm/device/cpu/cpu_device.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <utility>

#include "backends/llm/device/cpu/attention_kernel.h"
#include "backends/llm/device/cpu/gptq_kernel.h"
#include "backends/llm/device/cpu/half.h"
#include "backends/llm/device/cpu/linear_kernel.h"
#include "backends/llm/device/cpu/thread_pool.h"

namespace sluice::llm {
namespace {

// Host memory, either owned (64-byte aligned) or borrowed from `keep_alive_`.
class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(DType dtype, size_t elements, std::unique_ptr<std::byte[]> owned)
      : Buffer(dtype, elements), owned_(std::move(owned)), data_(owned_.get()) {}
  CpuBuffer(DType dtype, size_t elements, const void* borrowed, std::shared_ptr<const void> keep)
      : Buffer(dtype, elements),
        keep_alive_(std::move(keep)),
        data_(const_cast<std::byte*>(static_cast<const std::byte*>(borrowed))) {}

  std::byte* data() { return data_; }
  const std::byte* data() const { return data_; }

 private:
  std::unique_ptr<std::byte[]> owned_;
  std::shared_ptr<const void> keep_alive_;  // shared with every weight of the same file
  std::byte* data_;
};

// A GPTQ-quantized weight (gptq_kernel.h); only Linear reads it.
class CpuGptqBuffer final : public Buffer {
 public:
  explicit CpuGptqBuffer(GptqWeight w)
      : Buffer(DType::kI32, static_cast<size_t>(w.in / (32 / w.bits)) * w.out),
        weight_(std::move(w)) {}
  const GptqWeight& weight() const { return weight_; }

 private:
  GptqWeight weight_;
};

const float* F32(const Buffer& b) {
  return reinterpret_cast<const float*>(static_cast<const CpuBuffer&>(b).data());
}
float* F32(Buffer& b) {
  return reinterpret_cast<float*>(static_cast<CpuBuffer&>(b).data());
}

// Converts `n` weights starting at element `offset` of `w` to fp32. Returns a pointer to
// them: into `w` itself for fp32, else into `scratch`.
const float* WeightRowsF32(const Buffer& w, size_t offset, size_t n, float* scratch) {
  const void* data = static_cast<const CpuBuffer&>(w).data();
  if (w.dtype() == DType::kF32) return static_cast<const float*>(data) + offset;
  WeightsToF32(w.dtype(), data, offset, n, scratch);
  return scratch;
}

inline void Axpy(float a, const float* x, float* y, int32_t n) {
  for (int32_t i = 0; i < n; ++i) y[i] += a * x[i];
}

class CpuDevice final : public Device {
 public:
  CpuDevice(int threads, bool simd) : pool_(threads), simd_(simd) {}

  std::string_view name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::kF32; }

  Result<std::unique_ptr<Buffer>> Allocate(DType dtype, size_t elements) override {
    const size_t size = DTypeSize(dtype);
    if (elements > std::numeric_limits<size_t>::max() / size) {
      return ResourceExhausted("cpu buffer of " + std::to_string(elements) + " elements");
    }
    std::unique_ptr<std::byte[]> mem(new (std::nothrow)
                                         std::byte[std::max<size_t>(1, elements * size)]);
    if (!mem) {
      return ResourceExhausted("cannot allocate " + std::to_string(elements * size) +
                               " bytes of host memory");
    }
    return std::unique_ptr<Buffer>(new CpuBuffer(dtype, elements, std::move(mem)));
  }

  Result<std::unique_ptr<Buffer>> LoadWeight(DType dtype, const void* host, size_t elements,
                                             std::shared_ptr<const void> keep_alive) override {
    // Kernels read weights as their element type: a misaligned tensor (legal in a
    // safetensors file) is copied rather than read through a misaligned pointer.
    if (reinterpret_cast<uintptr_t>(host) % DTypeSize(dtype) != 0) {
      ASSIGN_OR_RETURN(auto copy, Allocate(dtype, elements));
      RETURN_IF_ERROR(Upload(*copy, host, elements * DTypeSize(dtype)));
      return copy;
    }
    return std::unique_ptr<Buffer>(new CpuBuffer(dtype, elements, host, std::move(keep_alive)));
  }

  Result<std::unique_ptr<Buffer>> LoadGptqWeight(const GptqWeightSource& source) override {
    ASSIGN_OR_RETURN(GptqWeight w, PrepareGptqWeight(source));
    return std::unique_ptr<Buffer>(new CpuGptqBuffer(std::move(w)));
  }

  Status Upload(Buffer& dst, const void* host, size_t bytes) override {
    if (bytes > dst.bytes()) return Internal("upload past the end of a buffer");
    std::memcpy(static_cast<CpuBuffer&>(dst).data(), host, bytes);
    return Status::Ok();
  }

  Status Download(const Buffer& src, void* host, size_t bytes) override {
    if (bytes > src.bytes()) return Internal("download past the end of a buffer");
    std::memcpy(host, static_cast<const CpuBuffer&>(src).data(), bytes);
    return Status::Ok();
  }

  Status BeginStep(const StepMetadata& step) override {
    step_ = step;
    rope_for_ = nullptr;
    row_seq_.assign(step_.tokens.size(), 0);
    for (size_t s = 0; s < step_.seqs.size(); ++s) {
      const auto& seq = step_.seqs[s];
      for (int32_t j = 0; j < seq.num_new; ++j)
        row_seq_[seq.first_row + j] = static_cast<int32_t>(s);
    }
    return Status::Ok();
  }

  void Embedding(const Buffer& table, int32_t hidden, Buffer& out) override {
    float* y = F32(out);
    pool_.ParallelFor(step_.num_rows(), 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const size_t offset = static_cast<size_t>(step_.tokens[r]) * hidden;
        float* dst = y + r * hidden;
        const float* src = WeightRowsF32(table, offset, hidden, dst);
        if (src != dst) std::memcpy(dst, src, sizeof(float) * hidden);
      }
    });
  }

  void RmsNorm(const Buffer& x, const Buffer& weight, int32_t rows, int32_t hidden, float eps,
               Buffer& out) override {
    const float* xs = F32(x);
    float* ys = F32(out);
    pool_.ParallelFor(rows, 4, [&](int64_t b, int64_t e) {
      std::vector<float> w(hidden);
      const float* wf = WeightRowsF32(weight, 0, hidden, w.data());
      for (int64_t r = b; r < e; ++r) NormRow(xs + r * hidden, wf, hidden, eps, ys + r * hidden);
    });
  }

  void AddRmsNorm(Buffer& residual, const Buffer& delta, const Buffer& weight, int32_t rows,
                  int32_t hidden, float eps, Buffer& out) override {
    float* hs = F32(residual);
    const float* ds = F32(delta);
    float* ys = F32(out);
    pool_.ParallelFor(rows, 4, [&](int64_t b, int64_t e) {
      std::vector<float> w(hidden);
      const float* wf = WeightRowsF32(weight, 0, hidden, w.data());
      for (int64_t r = b; r < e; ++r) {
        float* h = hs + r * hidden;
        const float* d = ds + r * hidden;
        for (int32_t i = 0; i < hidden; ++i) h[i] += d[i];
        NormRow(h, wf, hidden, eps, ys + r * hidden);
      }
    });
  }

  void Linear(const Buffer& x, const Buffer& weight, const Buffer* bias, int32_t rows, int32_t in,
              int32_t out, Buffer& y) override {
    const float* bias_f32 = nullptr;
    if (bias != nullptr) {
      bias_scratch_.resize(out);
      bias_f32 = WeightRowsF32(*bias, 0, out, bias_scratch_.data());
    }
    if (const auto* q = dynamic_cast<const CpuGptqBuffer*>(&weight)) {
      assert(q->weight().in == in && q->weight().out == out);
      return GptqLinear(pool_, simd_, F32(x), q->weight(), bias_f32, rows, F32(y));
    }
    LinearKernel(pool_, simd_, F32(x), weight.dtype(), static_cast<const CpuBuffer&>(weight).data(),
                 bias_f32, rows, in, out, F32(y));
  }

  // cos/sin of every row's angles are computed once per step (first call) and reused by
  // every layer.
  void Rope(Buffer& q, Buffer& k, int32_t num_q_heads, int32_t num_kv_heads,
            const RopeSpec& rope) override {
    const int32_t d = rope.head_dim;
    const int32_t half = d / 2;
    const int32_t rows = step_.num_rows();
    if (rope_for_ != &rope) {
      rope_cos_.resize(static_cast<size_t>(rows) * half);
      rope_sin_.resize(static_cast<size_t>(rows) * half);
      pool_.ParallelFor(rows, 8, [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const double pos = step_.positions[r];
          for (int32_t i = 0; i < half; ++i) {
            const double angle = pos * rope.inv_freq[i];
            rope_cos_[r * half + i] = static_cast<float>(std::cos(angle));
            rope_sin_[r * half + i] = static_cast<float>(std::sin(angle));
          }
        }
      });
      rope_for_ = &rope;
    }
    float* qs = F32(q);
    float* ks = F32(k);
    pool_.ParallelFor(rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const float* cs = rope_cos_.data() + r * half;
        const float* sn = rope_sin_.data() + r * half;
        auto rotate = [&](float* v) {
          for (int32_t i = 0; i < half; ++i) {
            const float x1 = v[i], x2 = v[i + half];
            v[i] = x1 * cs[i] - x2 * sn[i];
            v[i + half] = x2 * cs[i] + x1 * sn[i];
          }
        };
        for (int32_t h = 0; h < num_q_heads; ++h) rotate(qs + (r * num_q_heads + h) * d);
        for (int32_t h = 0; h < num_kv_heads; ++h) rotate(ks + (r * num_kv_heads + h) * d);
      }
    });
  }

  void SiluMul(const Buffer& gate, const Buffer& up, int32_t rows, int32_t width,
               Buffer& out) override {
    const float* g = F32(gate);
    const float* u = F32(up);
    float* y = F32(out);
    const int64_t n = static_cast<int64_t>(rows) * width;
    pool_.ParallelFor(n, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) y[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
    });
  }

  void KvWrite(const Buffer& k, const Buffer& v, int32_t kv_width, Buffer& k_cache,
               Buffer& v_cache) override {
    const float* ks = F32(k);
    const float* vs = F32(v);
    float* kc = F32(k_cache);
    float* vc = F32(v_cache);
    for (int32_t r = 0; r < step_.num_rows(); ++r) {
      const size_t slot = static_cast<size_t>(step_.slots[r]);
      assert((slot + 1) * kv_width <= k_cache.elements());
      std::memcpy(kc + slot * kv_width, ks + static_cast<size_t>(r) * kv_width,
                  sizeof(float) * kv_width);
      std::memcpy(vc + slot * kv_width, vs + static_cast<size_t>(r) * kv_width,
                  sizeof(float) * kv_width);
    }
  }

  // Scores over positions 0..pos, softmax, weighted sum of V. A task is a row and the q heads
  // of one kv head, so that each K and V row is read once for all of them, when that still
  // makes two tasks a thread; otherwise a row and one q head (a one-sequence step with a long
  // context keeps every thread busy). With AVX2 the task runs AttendSimd
  // (attention_kernel.h); the loop below is the portable path.
  void Attention(const Buffer& q, const Buffer& k_cache, const Buffer& v_cache,
                 const AttentionSpec& spec, Buffer& out) override {
    const float* qs = F32(q);
    const float* kc = F32(k_cache);
    const float* vc = F32(v_cache);
    float* os = F32(out);
    const int32_t d = spec.head_dim;
    const int32_t group = spec.num_q_heads / spec.num_kv_heads;
    const int32_t kv_width = spec.num_kv_heads * d;
    const int32_t bs = step_.block_size;
    const int64_t rows = step_.num_rows();
    const int32_t heads =
        rows * spec.num_kv_heads >= 2 * static_cast<int64_t>(pool_.threads()) ? group : 1;
    const int32_t tasks_per_row = spec.num_q_heads / heads;
    const size_t ctx = static_cast<size_t>(std::max(1, step_.max_context));
    const bool simd = simd_ && AttendSimdFits(d);
    pool_.ParallelFor(rows * tasks_per_row, 1, [&](int64_t tb, int64_t te) {
      std::vector<float> scores(heads * ctx), max_score(heads);
      std::vector<double> sum(heads);
      std::vector<int64_t> slots(simd ? ctx : 0);
      for (int64_t t = tb; t < te; ++t) {
        const int32_t r = static_cast<int32_t>(t / tasks_per_row);
        const int32_t h0 = static_cast<int32_t>(t % tasks_per_row) * heads;  // first q head
        const size_t kv_off = static_cast<size_t>(h0 / group) * d;
        const StepSequence& seq = step_.seqs[row_seq_[r]];
        const int32_t* table = step_.block_tables.data() + seq.block_table_begin;
        const int32_t len = step_.positions[r] + 1;
        const float* qv = qs + (static_cast<size_t>(r) * spec.num_q_heads + h0) * d;
        float* ov = os + (static_cast<size_t>(r) * spec.num_q_heads + h0) * d;
        if (simd) {
          for (int32_t p = 0; p < len; ++p) slots[p] = int64_t{table[p / bs]} * bs + p % bs;
          AttendArgs a;
          a.q = qv;
          a.heads = heads;
          a.dim = d;
          a.k = kc + kv_off;
          a.v = vc + kv_off;
          a.kv_width = kv_width;
          a.slots = slots.data();
          a.len = len;
          a.scale = spec.scale;
          a.scores = scores.data();
          a.inv_sum = max_score.data();  // scratch of `heads` floats
          a.out = ov;
          AttendSimd(a);
          continue;
        }
        std::fill(max_score.begin(), max_score.end(), -INFINITY);
        for (int32_t p = 0; p < len; ++p) {
          const size_t slot = static_cast<size_t>(table[p / bs]) * bs + p % bs;
          const float* k = kc + slot * kv_width + kv_off;
          for (int32_t j = 0; j < heads; ++j) {
            const float s = DotF32(simd_, qv + static_cast<size_t>(j) * d, k, d) * spec.scale;
            scores[j * ctx + p] = s;
            max_score[j] = std::max(max_score[j], s);
          }
        }
        std::fill(ov, ov + static_cast<size_t>(heads) * d, 0.f);
        std::fill(sum.begin(), sum.end(), 0.0);
        for (int32_t p = 0; p < len; ++p) {
          const size_t slot = static_cast<size_t>(table[p / bs]) * bs + p % bs;
          const float* v = vc + slot * kv_width + kv_off;
          for (int32_t j = 0; j < heads; ++j) {
            const float w = std::exp(scores[j * ctx + p] - max_score[j]);
            sum[j] += w;
            Axpy(w, v, ov + static_cast<size_t>(j) * d, d);
          }
        }
        for (int32_t j = 0; j < heads; ++j) {
          const float inv = static_cast<float>(1.0 / sum[j]);
          for (int32_t i = 0; i < d; ++i) ov[static_cast<size_t>(j) * d + i] *= inv;
        }
      }
    });
  }

  void GatherRows(const Buffer& x, int32_t width, Buffer& out) override {
    const float* xs = F32(x);
    float* ys = F32(out);
    for (size_t i = 0; i < step_.logit_rows.size(); ++i) {
      std::memcpy(ys + i * width, xs + static_cast<size_t>(step_.logit_rows[i]) * width,
                  sizeof(float) * width);
    }
  }

 private:
  static void NormRow(const float* x, const float* w, int32_t hidden, float eps, float* y) {
    double ss = 0;
    for (int32_t i = 0; i < hidden; ++i) ss += static_cast<double>(x[i]) * x[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / hidden + eps));
    for (int32_t i = 0; i < hidden; ++i) y[i] = w[i] * (x[i] * inv);
  }

  ThreadPool pool_;
  const bool simd_;  // AVX2/FMA/F16C kernels
  std::vector<float> bias_scratch_;
  // cos/sin [rows, head_dim / 2] of the current step for the RopeSpec `rope_for_`.
  const RopeSpec* rope_for_ = nullptr;
  std::vector<float> rope_cos_, rope_sin_;
  StepMetadata step_;             // the current step (BeginStep)
  std::vector<int32_t> row_seq_;  // row -> index into step_.seqs
};

}  // namespace

Result<std::unique_ptr<Device>> CreateCpuDevice(const CpuDeviceOptions& options) {
  if (options.threads < 0 || options.threads > 1024) {
    return InvalidArgument("cpu_threads must be in [0, 1024], got " +
                           std::to_string(options.threads));
  }
  ConfigureBlasForPool();
  return std::unique_ptr<Device>(new CpuDevice(options.threads, CpuHasSimd(options.kernels)));
}

}  // namespace sluice::llm

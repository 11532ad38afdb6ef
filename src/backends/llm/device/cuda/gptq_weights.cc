#include "backends/llm/device/cuda/gptq_weights.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <string>

#include "backends/llm/device/cuda/cuda_memory.h"
#include "backends/llm/device/cuda/cuda_tuning.h"

namespace sluice::llm::cuda {
namespace {

uint32_t LoadWord(const void* base, size_t index) {
  uint32_t w;
  std::memcpy(&w, static_cast<const std::byte*>(base) + index * sizeof(uint32_t), sizeof(w));
  return w;
}

// The checkpoint's scale `i` as fp16: fp16 scales as they are; bf16 and fp32 ones only when
// fp16 holds them exactly (the kernels keep fp16 scales).
Result<__half> ScaleAt(const GptqWeightSource& s, size_t i) {
  switch (s.scales_dtype) {
    case DType::kF16: {
      uint16_t bits;
      std::memcpy(&bits, static_cast<const std::byte*>(s.scales) + 2 * i, 2);
      __half_raw raw;
      raw.x = bits;
      return __half(raw);
    }
    case DType::kBF16:
    case DType::kF32: {
      float v;
      if (s.scales_dtype == DType::kF32) {
        std::memcpy(&v, static_cast<const std::byte*>(s.scales) + 4 * i, 4);
      } else {
        uint16_t bits;
        std::memcpy(&bits, static_cast<const std::byte*>(s.scales) + 2 * i, 2);
        const uint32_t wide = static_cast<uint32_t>(bits) << 16;
        std::memcpy(&v, &wide, 4);
      }
      const __half h = __float2half_rn(v);
      if (__half2float(h) != v) {
        return InvalidArgument("GPTQ weight: scale " + std::to_string(v) +
                               " is not exactly an fp16 value (the CUDA kernels keep fp16 "
                               "scales)");
      }
      return h;
    }
    case DType::kI32:
      break;
  }
  return InvalidArgument("GPTQ weight: scales of dtype " + std::string(DTypeName(s.scales_dtype)));
}

template <typename T>
Result<T*> DeviceCopy(const T* host, size_t n, cudaStream_t stream) {
  void* ptr = nullptr;
  if (cudaError_t e = cudaMalloc(&ptr, std::max<size_t>(1, n * sizeof(T))); e != cudaSuccess) {
    cudaGetLastError();
    return CudaError(e, "cudaMalloc of a GPTQ weight");
  }
  if (host != nullptr && n > 0) {
    if (cudaError_t e = cudaMemcpyAsync(ptr, host, n * sizeof(T), cudaMemcpyHostToDevice, stream);
        e != cudaSuccess) {
      cudaFree(ptr);
      return CudaError(e, "GPTQ weight upload");
    }
  }
  return static_cast<T*>(ptr);
}

}  // namespace

bool GptqMmaLayoutOn() {
  static const bool on = Tuning().gptq_mma;
  return on;
}

bool GptqLoadOrderOn() {
  static const bool on = Tuning().gptq_load_order;
  return on;
}

GptqRowOrder::~GptqRowOrder() {
  cudaFree(word_group_dev);
  cudaFree(kstep_group_dev);
  cudaFree(perm_dev);
}

GptqCudaWeight::GptqCudaWeight(int32_t out, size_t words, uint32_t* qweight, __half2* scale_zero,
                               std::shared_ptr<const GptqRowOrder> order, int32_t mma)
    : Buffer(DType::kI32, words),
      out_(out),
      qweight_(qweight),
      scale_zero_(scale_zero),
      order_(std::move(order)) {
  layout_.bits = order_->bits;
  layout_.in = order_->in;
  layout_.words = order_->in / (32 / order_->bits);
  layout_.stride = mma ? layout_.words : (layout_.words + 3) / 4 * 4;
  layout_.groups = order_->groups;
  layout_.mma = mma;
  layout_.word_group = order_->word_group_dev;
  layout_.kstep_group = order_->kstep_group_dev;
  layout_.perm = order_->perm_dev;
}

GptqCudaWeight::~GptqCudaWeight() {
  cudaFree(qweight_);
  cudaFree(scale_zero_);
}

namespace {

// A weight's row order on the host (GptqRowOrder's host half).
struct HostRowOrder {
  std::vector<int32_t> word_group, kstep_group, perm;
  bool load_grouped = false;
};

// Whether each tensor-core load's k16 steps (16 / bits of them) lie in one group.
bool LoadGrouped(const std::vector<int32_t>& kstep_group, int32_t bits) {
  const size_t steps = static_cast<size_t>(16 / bits);
  if (kstep_group.empty() || kstep_group.size() % steps != 0) return false;
  for (size_t s = 0; s < kstep_group.size(); ++s) {
    if (kstep_group[s] != kstep_group[s - s % steps]) return false;
  }
  return true;
}

// Row order: each input row's group, rows sorted by group (stable), each packed word of
// the sorted rows in one group; the tensor-core layout's k16 steps each in one group, or
// none (the column layout). `perm` is empty when the order is the identity.
Result<HostRowOrder> RowOrderOf(const GptqWeightSource& s, int32_t pack, int32_t words) {
  std::vector<int32_t> group(s.in);
  for (int32_t i = 0; i < s.in; ++i) {
    int32_t g = s.group_size < 0 ? 0 : i / std::max(s.group_size, 1);
    if (s.g_idx != nullptr) g = static_cast<int32_t>(LoadWord(s.g_idx, i));
    if (g < 0 || g >= s.groups) {
      return InvalidArgument("GPTQ weight: g_idx[" + std::to_string(i) + "] = " +
                             std::to_string(g) + " outside [0, " + std::to_string(s.groups) + ")");
    }
    group[i] = g;
  }
  HostRowOrder order;
  std::vector<int32_t>& perm = order.perm;
  perm.resize(s.in);
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(),
                   [&](int32_t a, int32_t b) { return group[a] < group[b]; });
  bool identity = true;
  for (int32_t k = 0; k < s.in && identity; ++k) identity = perm[k] == k;
  order.word_group.resize(words);
  for (int32_t j = 0; j < words; ++j) {
    const int32_t g = group[perm[static_cast<size_t>(j) * pack]];
    for (int32_t e = 1; e < pack; ++e) {
      if (group[perm[static_cast<size_t>(j) * pack + e]] != g) {
        return InvalidArgument(
            "GPTQ weight: a group of input rows does not start on a multiple of " +
            std::to_string(pack) + " rows (sorted row " + std::to_string(j * pack + e) +
            "); the CUDA kernels need each packed word in one group");
      }
    }
    order.word_group[j] = g;
  }
  std::vector<int32_t>& kstep_group = order.kstep_group;
  if (s.in % 16 == 0) {
    kstep_group.resize(s.in / 16);
    for (int32_t st = 0; st < s.in / 16 && !kstep_group.empty(); ++st) {
      const int32_t g = group[perm[static_cast<size_t>(st) * 16]];
      for (int32_t e = 1; e < 16; ++e) {
        if (group[perm[static_cast<size_t>(st) * 16 + e]] != g) {
          kstep_group.clear();
          break;
        }
      }
      if (!kstep_group.empty()) kstep_group[st] = g;
    }
  }
  order.load_grouped = LoadGrouped(kstep_group, s.bits);
  if (identity) perm.clear();
  return order;
}

// Scales and zero points, column-major: [out, groups] of {scale, zero + offset}.
Result<std::vector<__half2>> ScaleZeros(const GptqWeightSource& s, int32_t pack) {
  const uint32_t mask = (1u << s.bits) - 1;
  std::vector<__half2> scale_zero(static_cast<size_t>(s.out) * s.groups);
  for (int32_t g = 0; g < s.groups; ++g) {
    for (int32_t n = 0; n < s.out; ++n) {
      ASSIGN_OR_RETURN(__half scale, ScaleAt(s, static_cast<size_t>(g) * s.out + n));
      if (!std::isfinite(__half2float(scale))) {
        return InvalidArgument("GPTQ weight: scales[" + std::to_string(g) + ", " +
                               std::to_string(n) + "] is not finite");
      }
      const uint32_t word = LoadWord(s.qzeros, static_cast<size_t>(g) * (s.out / pack) + n / pack);
      const float zero = static_cast<float>((word >> (s.bits * (n % pack))) & mask) +
                         static_cast<float>(s.zero_offset);
      scale_zero[static_cast<size_t>(n) * s.groups + g] = __half2(scale, __float2half_rn(zero));
    }
  }
  return scale_zero;
}

// `last` when it is the same order, else `host` uploaded as a new one.
Result<std::shared_ptr<const GptqRowOrder>> SharedRowOrder(
    const std::shared_ptr<const GptqRowOrder>& last, const GptqWeightSource& s, HostRowOrder host,
    cudaStream_t stream) {
  if (last != nullptr && last->bits == s.bits && last->in == s.in && last->groups == s.groups &&
      last->word_group == host.word_group && last->perm == host.perm) {
    return last;
  }
  auto fresh = std::make_shared<GptqRowOrder>();
  fresh->bits = s.bits;
  fresh->in = s.in;
  fresh->groups = s.groups;
  ASSIGN_OR_RETURN(fresh->word_group_dev,
                   DeviceCopy(host.word_group.data(), host.word_group.size(), stream));
  if (!host.kstep_group.empty()) {
    ASSIGN_OR_RETURN(fresh->kstep_group_dev,
                     DeviceCopy(host.kstep_group.data(), host.kstep_group.size(), stream));
  }
  if (!host.perm.empty()) {
    ASSIGN_OR_RETURN(fresh->perm_dev, DeviceCopy(host.perm.data(), host.perm.size(), stream));
  }
  fresh->word_group = std::move(host.word_group);
  fresh->kstep_group = std::move(host.kstep_group);
  fresh->load_grouped = host.load_grouped;
  fresh->perm = std::move(host.perm);
  return std::shared_ptr<const GptqRowOrder>(std::move(fresh));
}

}  // namespace

Result<std::unique_ptr<GptqCudaWeight>> LoadGptqCudaWeight(
    const GptqWeightSource& s, void* staging, size_t staging_bytes,
    std::shared_ptr<const GptqRowOrder>& last_order, cudaStream_t stream) {
  RETURN_IF_ERROR(ValidateGptqWeightSource(s));
  const int32_t pack = 32 / s.bits;
  if (s.g_idx == nullptr && s.group_size == 0) {
    return InvalidArgument("GPTQ weight: no g_idx and a group size of 0");
  }
  const int32_t words = s.in / pack;
  const size_t qweight_bytes = static_cast<size_t>(words) * s.out * sizeof(uint32_t);
  if (staging == nullptr || staging_bytes < qweight_bytes) {
    return Internal("GPTQ weight: load staging smaller than qweight");
  }
  ASSIGN_OR_RETURN(HostRowOrder host_order, RowOrderOf(s, pack, words));
  ASSIGN_OR_RETURN(std::vector<__half2> scale_zero, ScaleZeros(s, pack));
  ASSIGN_OR_RETURN(std::shared_ptr<const GptqRowOrder> order,
                   SharedRowOrder(last_order, s, std::move(host_order), stream));

  const bool tensor_core =
      GptqMmaLayoutOn() && GptqMmaShape(s.in, s.out) && !order->kstep_group.empty();
  const int32_t mma = !tensor_core ? 0 : order->load_grouped && GptqLoadOrderOn() ? 2 : 1;
  const int32_t stride = mma ? words : (words + 3) / 4 * 4;
  ASSIGN_OR_RETURN(__half2 * sz, DeviceCopy(scale_zero.data(), scale_zero.size(), stream));
  Result<uint32_t*> packed =
      DeviceCopy<uint32_t>(nullptr, static_cast<size_t>(s.out) * stride, stream);
  if (!packed.ok()) {
    cudaFree(sz);
    return packed.status();
  }
  auto weight = std::make_unique<GptqCudaWeight>(s.out, static_cast<size_t>(s.out) * stride,
                                                 *packed, sz, order, mma);
  SLUICE_CUDA_RETURN(
      cudaMemcpyAsync(staging, s.qweight, qweight_bytes, cudaMemcpyHostToDevice, stream),
      "GPTQ qweight upload");
  if (mma) {
    GptqRepackMma(static_cast<const uint32_t*>(staging), order->perm_dev, s.bits, s.in, s.out, mma,
                  *packed, stream);
  } else {
    GptqRepack(static_cast<const uint32_t*>(staging), order->perm_dev, s.bits, s.in, s.out, stride,
               *packed, stream);
  }
  SLUICE_CUDA_RETURN(cudaStreamSynchronize(stream), "GPTQ weight repack");
  SLUICE_CUDA_RETURN(cudaGetLastError(), "GPTQ weight repack");
  last_order = std::move(order);
  return weight;
}

}  // namespace sluice::llm::cuda

#include "backends/llm/device/cuda/cuda_tuning.h"

#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

#include "common/status.h"

namespace sluice::llm::cuda {
namespace {

// The table of cuda_tuning.h in code: each variable, the member it sets, and its range.
struct Switch {
  const char* name;
  bool CudaTuning::*member;
};
struct Number {
  const char* name;
  int CudaTuning::*member;
  int min, max;
  int step;           // the accepted values are min, min + step, ... (1: every integer in range)
  int excluded = -1;  // one of those that is not accepted (-1: none)
};

constexpr Switch kSwitches[] = {
    {"SLUICE_CUDA_GEMV", &CudaTuning::small_batch_gemv},
    {"SLUICE_CUDA_FUSE", &CudaTuning::fuse},
    {"SLUICE_CUDA_PARTIALS_NORM", &CudaTuning::partials_norm},
    {"SLUICE_CUDA_GEMV_PAIRS", &CudaTuning::gemv_pairs},
    {"SLUICE_CUDA_GEMV_SPLIT", &CudaTuning::gemv_split},
    {"SLUICE_CUDA_PREFILL_TC", &CudaTuning::prefill_tensor_cores},
    {"SLUICE_CUDA_DECODE_PIPELINE", &CudaTuning::decode_pipeline},
    {"SLUICE_CUDA_DECODE_LATE_PDL", &CudaTuning::decode_late_pdl},
    {"SLUICE_CUDA_DECODE_EARLY_LAUNCH", &CudaTuning::decode_early_launch},
    {"SLUICE_CUDA_DECODE_FUSED_COMBINE", &CudaTuning::decode_fused_combine},
    {"SLUICE_CUDA_DECODE_FUSED_ROPE", &CudaTuning::decode_fused_rope},
    {"SLUICE_CUDA_TOKEN_MASKS", &CudaTuning::token_masks},
    {"SLUICE_CUDA_GPTQ_PARTIALS", &CudaTuning::gptq_partials},
    {"SLUICE_CUDA_GPTQ_MMA", &CudaTuning::gptq_mma},
    {"SLUICE_CUDA_GPTQ_LOAD_ORDER", &CudaTuning::gptq_load_order},
    {"SLUICE_CUDA_GPTQ_SWIGLU", &CudaTuning::gptq_swiglu},
    {"SLUICE_CUDA_GPTQ_GEMM90", &CudaTuning::gptq_gemm90},
    {"SLUICE_CUDA_GPTQ_CHUNK", &CudaTuning::gptq_chunk},
    {"SLUICE_CUDA_GPTQ_GEMM90_TAIL", &CudaTuning::gptq_gemm90_tail},
    {"SLUICE_CUDA_GPTQ_DEQUANT_AHEAD", &CudaTuning::gptq_dequant_ahead},
    {"SLUICE_CUDA_GPTQ_GEMM90_CLUSTER", &CudaTuning::gptq_gemm90_cluster},
    {"SLUICE_CUDA_GPTQ_DEQUANT_ROWS", &CudaTuning::gptq_dequant_rows},
    {"SLUICE_CUDA_PDL", &CudaTuning::dependent_launch},
    {"SLUICE_CUDA_PROFILE", &CudaTuning::profile},
};

constexpr Number kNumbers[] = {
    {"SLUICE_CUDA_PARTIALS_MAX_SPLITS", &CudaTuning::partials_max_splits, 0, 4, 1},
    {"SLUICE_CUDA_GEMV_SLICE", &CudaTuning::gemv_slice, 256, 1 << 20, 1},
    {"SLUICE_CUDA_PREFILL_WARPS", &CudaTuning::prefill_warps, 4, 8, 4},
    {"SLUICE_CUDA_PREFILL_MTILES", &CudaTuning::prefill_mtiles, 1, 3, 1},
    {"SLUICE_CUDA_PREFILL_WGMMA", &CudaTuning::prefill_wgmma, 0, 5, 1},
    {"SLUICE_CUDA_GPTQ_MMA_MAX_ROWS", &CudaTuning::gptq_mma_max_rows, 0, 4096, 1},
    {"SLUICE_CUDA_GPTQ_MMA_TILES", &CudaTuning::gptq_mma_tiles, 0, 2, 1},
    {"SLUICE_CUDA_GPTQ_PDL_MAX_ROWS", &CudaTuning::gptq_pdl_max_rows, 0, 4096, 1},
    {"SLUICE_CUDA_GPTQ_GEMM_MAX_ROWS", &CudaTuning::gptq_gemm_max_rows, 0, 4096, 1},
    {"SLUICE_CUDA_GPTQ_GEMM90_MIN_ROWS", &CudaTuning::gptq_gemm90_min_rows, 1, 1024, 1},
    {"SLUICE_CUDA_GPTQ_GEMM90_MAX_ROWS", &CudaTuning::gptq_gemm90_max_rows, 0, 4096, 1},
    {"SLUICE_CUDA_GPTQ_GEMM90_SHAPES", &CudaTuning::gptq_gemm90_shapes, 0, 2, 1},
    {"SLUICE_CUDA_GPTQ_GEMM90_TILE_ROWS", &CudaTuning::gptq_gemm90_tile_rows, 0, 256, 64},
    {"SLUICE_CUDA_GPTQ_GEMM90_TILE_COLS", &CudaTuning::gptq_gemm90_tile_cols, 0, 192, 64, 64},
    {"SLUICE_CUDA_GPTQ_GEMM90_SPLITS", &CudaTuning::gptq_gemm90_splits, 0, 8, 1},
    {"SLUICE_CUDA_GPTQ_GEMM90_TMA", &CudaTuning::gptq_gemm90_tma, 0, 2, 1},
    {"SLUICE_CUDA_MATMUL_EXACT_ROWS", &CudaTuning::matmul_exact_rows, 0, 1 << 20, 1},
};

Status Invalid(const char* name, std::string_view value, std::string_view expected) {
  return InvalidArgument(std::string(name) + "='" + std::string(value) + "': expected " +
                         std::string(expected));
}

// "4 or 8", "0, 128 or 192" for a few values (or any step but 1), else "an integer from 256 to
// 1048576".
std::string Expected(const Number& n) {
  if (n.step == 1 && (n.max - n.min) / n.step > 3) {
    return "an integer from " + std::to_string(n.min) + " to " + std::to_string(n.max);
  }
  std::string list;
  for (int value = n.min; value <= n.max; value += n.step) {
    if (value == n.excluded) continue;
    if (!list.empty()) list += value + n.step > n.max ? " or " : ", ";
    list += std::to_string(value);
  }
  return list;
}

}  // namespace

bool CudaTuning::operator==(const CudaTuning& other) const = default;

Result<CudaTuning> ParseCudaTuning(const EnvLookup& env) {
  CudaTuning tuning;
  for (const Switch& s : kSwitches) {
    const char* raw = env(s.name);
    if (raw == nullptr || *raw == '\0') continue;
    const std::string_view v(raw);
    if (v != "0" && v != "1") return Invalid(s.name, v, "0 or 1");
    tuning.*s.member = v == "1";
  }
  for (const Number& n : kNumbers) {
    const char* raw = env(n.name);
    if (raw == nullptr || *raw == '\0') continue;
    const std::string_view v(raw);
    int value = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    const bool in_range = ec == std::errc() && end == v.data() + v.size() && value >= n.min &&
                          value <= n.max && (value - n.min) % n.step == 0 && value != n.excluded;
    if (!in_range) return Invalid(n.name, v, Expected(n));
    tuning.*n.member = value;
  }
  return tuning;
}

const Result<CudaTuning>& ProcessCudaTuning() {
  static const Result<CudaTuning> tuning =
      ParseCudaTuning([](const char* name) { return std::getenv(name); });
  return tuning;
}

const CudaTuning& Tuning() {
  static const CudaTuning defaults;
  const Result<CudaTuning>& parsed = ProcessCudaTuning();
  return parsed.ok() ? *parsed : defaults;
}

}  // namespace sluice::llm::cuda

#include "backends/llm/device/ops.h"

#include <string>

namespace sluice::llm {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return 4;
    case DType::kBF16:
      return 2;
    case DType::kF16:
      return 2;
    case DType::kI32:
      return 4;
  }
  return 0;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
    case DType::kI32:
      return "I32";
  }
  return "?";
}

Status ValidateGptqWeightSource(const GptqWeightSource& s) {
  if (s.bits != 4 && s.bits != 8) {
    return InvalidArgument("GPTQ weight: " + std::to_string(s.bits) + " bits (4 or 8)");
  }
  const int32_t pack = 32 / s.bits;
  if (s.in < 1 || s.out < 1 || s.in % pack != 0 || s.out % pack != 0) {
    return InvalidArgument("GPTQ weight of " + std::to_string(s.in) + " x " +
                           std::to_string(s.out) + ": both must be positive multiples of " +
                           std::to_string(pack) + " at " + std::to_string(s.bits) + " bits");
  }
  if (s.groups < 1 || s.groups > s.in) {
    return InvalidArgument("GPTQ weight: " + std::to_string(s.groups) + " groups for " +
                           std::to_string(s.in) + " input rows");
  }
  if (s.qweight == nullptr || s.qzeros == nullptr || s.scales == nullptr) {
    return InvalidArgument("GPTQ weight: qweight, qzeros and scales are required");
  }
  return Status::Ok();
}

}  // namespace sluice::llm

#pragma once
// Switches for A/B measurements of the CUDA device's default behaviours, read from the
// stub's environment: SLUICE_CUDA_<NAME>=0 turns one off in the same build, so that
// bench/gpu_7b.sh's `ab` phase can alternate both forms in one run on one machine.

#include <cstdlib>
#include <string_view>

namespace sluice::llm::cuda {

// False when the variable is "0", true otherwise (unset included).
inline bool SwitchOn(const char* variable) {
  const char* v = std::getenv(variable);
  return v == nullptr || std::string_view(v) != "0";
}

}  // namespace sluice::llm::cuda

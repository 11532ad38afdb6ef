#include "core/inference_service.h"

namespace sluice::core {

std::string_view ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kUnknown: return "UNKNOWN";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kUnloading: return "UNLOADING";
    case ModelState::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

}  // namespace sluice::core

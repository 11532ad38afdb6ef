#pragma once
// Sluice's version (CMake's project VERSION), as `sluice --version`, GET /version, the
// KServe server metadata (GET /v2, gRPC ServerMetadata) and the startup banner report it.

#include <string_view>

namespace sluice {

std::string_view SluiceVersion();

}  // namespace sluice

#include "common/version.h"

namespace sluice {

// SLUICE_VERSION is defined for this file only (src/common/CMakeLists.txt), so that a new
// version rebuilds one file.
std::string_view SluiceVersion() { return SLUICE_VERSION; }

}  // namespace sluice

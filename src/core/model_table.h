#pragma once
// Triton's model table, logged once the initial loads are done:
//   +-------------+---------+--------------------------------+
//   | Model       | Version | Status                         |
//   +-------------+---------+--------------------------------+
//   | sluice-demo | 1       | READY                          |
//   | broken      | 1       | UNAVAILABLE: <reason>          |
//   +-------------+---------+--------------------------------+
// A model never loaded shows "-" as version. Cells are cut at 200 bytes.

#include <string>
#include <vector>

#include "core/inference_service.h"

namespace sluice::core {

// The table, lines separated by '\n' (no trailing newline); an empty index still has its
// header.
std::string FormatModelTable(const std::vector<ModelIndexEntry>& index);

}  // namespace sluice::core

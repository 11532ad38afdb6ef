#pragma once
// Model versions on disk and Triton's version policies (latest{num_versions} / all /
// specific{versions}). Selection is a pure function of (policy, versions on disk).

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/status.h"
#include "model_config.pb.h"

namespace sluice::core {

// Most version subdirectories read from one model directory.
inline constexpr size_t kMaxVersionsOnDisk = 4096;

// The versions present in `model_dir`: subdirectories (or symlinks to directories) whose
// name is a decimal integer >= 0 without leading zeros ("0", "1", "10"; not "01", "-1",
// "v1") that fits int64. Other entries are ignored, as Triton does. Ascending.
// Errors: the directory cannot be read (message without the host path), more than
// kMaxVersionsOnDisk versions.
Result<std::vector<int64_t>> ListVersionDirs(const std::filesystem::path& model_dir);

// The versions to serve, ascending, chosen among `on_disk` (any order, duplicates allowed):
// latest{n}: the n highest (n = 0 counts as 1; no policy set = latest{1}); all: every one;
// specific{versions}: those listed that are on disk (missing ones are skipped, as Triton
// does; `missing`, when given, receives them ascending). May be empty: the caller decides
// (Triton: "at least one version must be available under the version policy").
std::vector<int64_t> SelectVersions(const inference::ModelVersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk,
                                    std::vector<int64_t>* missing = nullptr);

}  // namespace sluice::core

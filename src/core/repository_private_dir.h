#pragma once
// A private temporary model directory for a load override (Triton's `file:<version>/<path>`
// load parameters): created with mkdtemp under a tmp root, filled with the override files,
// and removed (recursively) when the last owner drops it.
//
// Ownership: held through shared_ptr because its lifetime is truly shared: the ModelSource
// that names it, and every loaded version (and so every stub) that reads from it; the
// directory must outlive all of them, whichever goes last.

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::core {

// Caps on one override.
inline constexpr size_t kMaxOverrideFiles = 1024;
inline constexpr size_t kMaxOverrideTotalBytes = size_t{4} << 30;  // 4 GiB

class PrivateModelDir {
 public:
  // Creates "<tmp_root>/sluice-<model>-XXXXXX" and writes every file (key: a relative path
  // such as "1/model.json", value: the raw bytes). Every key is checked first (see
  // ResolveUnder: no "..", no absolute path, no empty or "." component, caps); if any is
  // refused, or the caps are exceeded, nothing is created at all. Then directories are
  // created one by one (never following a symlink, O_NOFOLLOW/O_EXCL on files), so that
  // nothing can be written outside the directory. On a write error the partial directory
  // is removed. Errors: InvalidArgument for a refused key (names the key, never a host
  // path), Internal for a filesystem failure.
  static Result<std::shared_ptr<const PrivateModelDir>> Create(
      const std::filesystem::path& tmp_root, std::string_view model_name,
      const std::map<std::string, std::string>& files);

  ~PrivateModelDir();  // removes the directory tree; errors are logged, never thrown
  PrivateModelDir(const PrivateModelDir&) = delete;
  PrivateModelDir& operator=(const PrivateModelDir&) = delete;

  // The directory (host path: never put it in a client-visible message).
  const std::filesystem::path& path() const { return path_; }

 private:
  explicit PrivateModelDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;  // constant after construction
};

// Checks one override key without touching the filesystem (ValidateRelativePath).
Status ValidateOverrideFileKey(std::string_view key);

}  // namespace sluice::core

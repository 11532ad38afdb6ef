#include "core/repository_version_policy.h"

#include <algorithm>
#include <charconv>
#include <set>
#include <string>
#include <system_error>

namespace sluice::core {
namespace {

// A version directory name: "0" or [1-9][0-9]*, fitting int64.
bool ParseVersionName(const std::string& name, int64_t* version) {
  if (name.empty() || name.size() > 19) return false;
  if (name.size() > 1 && name[0] == '0') return false;
  for (char c : name) {
    if (c < '0' || c > '9') return false;
  }
  const auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), *version);
  return ec == std::errc() && ptr == name.data() + name.size();
}

}  // namespace

Result<std::vector<int64_t>> ListVersionDirs(const std::filesystem::path& model_dir) {
  std::error_code ec;
  std::filesystem::directory_iterator it(model_dir, ec);
  if (ec) return Internal("cannot read the model directory: " + ec.message());
  std::vector<int64_t> versions;
  for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) break;
    int64_t version = 0;
    if (!ParseVersionName(it->path().filename().string(), &version)) continue;
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;  // follows a symlink to a directory
    if (versions.size() >= kMaxVersionsOnDisk) {
      return InvalidArgument("more than " + std::to_string(kMaxVersionsOnDisk) +
                             " version directories");
    }
    versions.push_back(version);
  }
  if (ec) return Internal("cannot read the model directory: " + ec.message());
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::vector<int64_t> SelectVersions(const inference::ModelVersionPolicy& policy,
                                    const std::vector<int64_t>& on_disk,
                                    std::vector<int64_t>* missing) {
  const std::set<int64_t> available(on_disk.begin(), on_disk.end());
  std::vector<int64_t> selected;
  if (missing != nullptr) missing->clear();
  switch (policy.policy_choice_case()) {
    case inference::ModelVersionPolicy::kAll:
      selected.assign(available.begin(), available.end());
      break;
    case inference::ModelVersionPolicy::kSpecific: {
      const std::set<int64_t> wanted(policy.specific().versions().begin(),
                                     policy.specific().versions().end());
      for (int64_t v : wanted) {
        if (available.count(v) != 0) {
          selected.push_back(v);
        } else if (missing != nullptr) {
          missing->push_back(v);
        }
      }
      break;
    }
    case inference::ModelVersionPolicy::kLatest:
    case inference::ModelVersionPolicy::POLICY_CHOICE_NOT_SET: {
      uint32_t n = policy.has_latest() ? policy.latest().num_versions() : 1;
      if (n == 0) n = 1;
      for (auto it = available.rbegin(); it != available.rend() && selected.size() < n; ++it) {
        selected.push_back(*it);
      }
      std::reverse(selected.begin(), selected.end());
      break;
    }
  }
  return selected;
}

}  // namespace sluice::core

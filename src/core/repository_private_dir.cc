#include "core/repository_private_dir.h"

#include <errno.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "common/unique_fd.h"
#include "core/repository_path_guard.h"

namespace sluice::core {
namespace {

std::vector<std::string> SplitPath(std::string_view key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    parts.emplace_back(key.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

// Writes `bytes` to `dir_fd`/`key`, creating intermediate directories. Never follows a
// symlink: every directory is opened with O_NOFOLLOW and the file is created O_EXCL.
Status WriteOne(int root_fd, std::string_view key, const std::string& bytes) {
  const std::vector<std::string> parts = SplitPath(key);
  std::vector<std::unique_ptr<UniqueFd>> dirs;  // keeps each parent open while descending
  int dir_fd = root_fd;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (::mkdirat(dir_fd, parts[i].c_str(), 0700) != 0 && errno != EEXIST) {
      return Internal("override file " + QuoteForMessage(key) +
                      ": cannot create a directory: " + std::strerror(errno));
    }
    const int fd =
        ::openat(dir_fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return InvalidArgument("override file " + QuoteForMessage(key) + ": a parent is not a directory");
    }
    dirs.push_back(std::make_unique<UniqueFd>(fd));
    dir_fd = fd;
  }
  UniqueFd file(::openat(dir_fd, parts.back().c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (file.get() < 0) {
    return InvalidArgument("override file " + QuoteForMessage(key) +
                           ": cannot be created: " + std::strerror(errno));
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(file.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Internal("override file " + QuoteForMessage(key) + ": write failed: " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Status ValidateOverrideFileKey(std::string_view key) {
  // Lexical checks only: the private directory is fresh and every name in it is created
  // here without following symlinks, so there is no symlink to resolve.
  return ValidateRelativePath(key, "override file");
}

Result<std::shared_ptr<const PrivateModelDir>> PrivateModelDir::Create(
    const std::filesystem::path& tmp_root, std::string_view model_name,
    const std::map<std::string, std::string>& files) {
  // Every check happens before anything is created.
  if (files.size() > kMaxOverrideFiles) {
    return InvalidArgument("more than " + std::to_string(kMaxOverrideFiles) + " override files");
  }
  size_t total = 0;
  for (const auto& [key, bytes] : files) {
    RETURN_IF_ERROR(ValidateOverrideFileKey(key));
    if (bytes.size() > kMaxOverrideTotalBytes - total) {
      return InvalidArgument("override files are larger than " +
                             std::to_string(kMaxOverrideTotalBytes) + " bytes in all");
    }
    total += bytes.size();
  }
  RETURN_IF_ERROR(ValidateModelName(model_name));

  std::string pattern =
      (tmp_root / ("sluice-" + std::string(model_name.substr(0, 64)) + "-XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Internal(std::string("cannot create a private model directory: ") +
                    std::strerror(errno));
  }
  // From here the directory is owned: any failure below removes it (destructor).
  std::shared_ptr<const PrivateModelDir> dir(new PrivateModelDir(std::filesystem::path(pattern)));
  UniqueFd root_fd(::open(pattern.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root_fd.get() < 0) {
    return Internal(std::string("cannot open the private model directory: ") +
                    std::strerror(errno));
  }
  for (const auto& [key, bytes] : files) {
    RETURN_IF_ERROR(WriteOne(root_fd.get(), key, bytes));
  }
  return dir;
}

PrivateModelDir::~PrivateModelDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);  // does not follow symlinks
  if (ec) spdlog::warn("cannot remove a private model directory: {}", ec.message());
}

}  // namespace sluice::core

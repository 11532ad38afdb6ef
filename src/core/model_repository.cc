#include "core/model_repository.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <system_error>

#include "common/test_behavior_parameters.h"
#include "core/repository_model_config.h"
#include "core/repository_path_guard.h"
#include "core/repository_version_policy.h"

namespace sluice::core {
namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

// FNV-1a, 64-bit: deterministic across runs and builds (std::hash is not promised to be).
uint64_t Fnv1a(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= kFnvPrime;
  }
  return h;
}

uint64_t MixNumber(uint64_t h, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= kFnvPrime;
  }
  return h;
}

std::string ModelPrefix(std::string_view name) {
  return "model '" + EscapeForMessage(name) + "'";
}

// Reads a whole file of at most `limit` bytes. Messages name `label`, never the path.
Result<std::string> ReadSmallFile(const std::filesystem::path& path, std::string_view label,
                                  size_t limit) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return InvalidArgument(std::string(label) + " is missing or not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(std::string(label) + " cannot be opened");
  std::string text;
  text.resize(limit + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return InvalidArgument(std::string(label) + " cannot be read");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limit) {
    return InvalidArgument(std::string(label) + " is larger than " + std::to_string(limit) +
                           " bytes");
  }
  return text;
}

uint64_t ConfigFingerprint(const inference::ModelConfig& config) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    config.SerializeToCodedStream(&coded);
  }
  return Fnv1a(bytes);
}

}  // namespace

uint64_t FingerprintTree(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  // Each entry is hashed on its own and the hashes are summed, so the result does not
  // depend on the order in which the directory is listed.
  uint64_t sum = 0;
  uint64_t count = 0;
  bool truncated = false;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) return MixNumber(Fnv1a("unreadable"), static_cast<uint64_t>(ec.value()));
  for (const fs::recursive_directory_iterator end; it != end; it.increment(ec)) {
    if (ec) break;
    if (count >= kMaxFingerprintEntries) {
      truncated = true;
      break;
    }
    ++count;
    const fs::path& path = it->path();
    uint64_t h = Fnv1a(path.lexically_relative(dir).generic_string());
    std::error_code entry_ec;
    const fs::file_status status = it->symlink_status(entry_ec);
    h = MixNumber(h, static_cast<uint64_t>(status.type()));
    if (fs::is_symlink(status)) {
      h = Fnv1a(fs::read_symlink(path, entry_ec).generic_string(), h);
    } else if (fs::is_regular_file(status)) {
      h = MixNumber(h, it->file_size(entry_ec));
    }
    const auto mtime = it->last_write_time(entry_ec);
    h = MixNumber(h, static_cast<uint64_t>(mtime.time_since_epoch().count()));
    if (entry_ec) h = MixNumber(h, static_cast<uint64_t>(entry_ec.value()));
    sum += h;
    if (fs::is_directory(status) && it.depth() + 1 >= kMaxFingerprintDepth) {
      it.disable_recursion_pending();
    }
  }
  uint64_t result = MixNumber(MixNumber(kFnvOffset, sum), count);
  if (truncated) result = Fnv1a("truncated", result);
  if (ec) result = MixNumber(Fnv1a("error", result), static_cast<uint64_t>(ec.value()));
  return result;
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::Create(ModelRepositoryOptions options) {
  if (options.roots.empty()) return InvalidArgument("at least one model repository is needed");
  std::vector<std::filesystem::path> roots;
  for (const auto& root : options.roots) {
    std::error_code ec;
    // The operator's own command-line value: naming it helps and reveals nothing new.
    const std::string shown = "model repository '" + EscapeForMessage(root.string()) + "'";
    if (!std::filesystem::is_directory(root, ec)) {
      return InvalidArgument(shown + " does not exist or is not a directory");
    }
    auto canonical = std::filesystem::canonical(root, ec);
    if (ec) return InvalidArgument(shown + " cannot be resolved: " + ec.message());
    if (std::find(roots.begin(), roots.end(), canonical) != roots.end()) {
      return InvalidArgument(shown + " is given twice");
    }
    roots.push_back(std::move(canonical));
  }
  std::filesystem::path tmp_root = options.override_tmp_root;
  std::error_code ec;
  if (tmp_root.empty()) {
    tmp_root = std::filesystem::temp_directory_path(ec);
    if (ec) return Internal("no temporary directory for load overrides: " + ec.message());
  }
  if (!std::filesystem::is_directory(tmp_root, ec)) {
    return InvalidArgument("the directory for load overrides '" +
                           EscapeForMessage(tmp_root.string()) + "' does not exist");
  }
  return std::unique_ptr<ModelRepository>(
      new ModelRepository(std::move(roots), std::move(tmp_root), options.allow_test_behaviors_in_overrides));
}

std::vector<std::string> ModelRepository::ListModels() const {
  std::set<std::string> names;
  for (size_t i = 0; i < roots_.size(); ++i) {
    std::error_code ec;
    std::filesystem::directory_iterator it(roots_[i], ec);
    if (ec) {
      spdlog::warn("model repository #{} cannot be listed: {}", i + 1, ec.message());
      continue;
    }
    for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
      if (ec) break;
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      std::error_code type_ec;
      if (!it->is_directory(type_ec)) continue;
      if (Status s = ValidateModelName(name); !s.ok()) {
        spdlog::warn("model repository #{}: skipping an entry: {}", i + 1, s.message());
        continue;
      }
      names.insert(name);
    }
    if (ec) spdlog::warn("model repository #{} cannot be listed: {}", i + 1, ec.message());
  }
  return {names.begin(), names.end()};
}

Result<std::filesystem::path> ModelRepository::FindModelDir(const std::string& name) const {
  std::vector<std::filesystem::path> found;
  if (!name.empty() && name[0] != '.') {
    for (const auto& root : roots_) {
      std::error_code ec;
      const std::filesystem::path dir = root / name;
      if (std::filesystem::is_directory(dir, ec)) found.push_back(dir);
    }
  }
  if (found.empty()) {
    return NotFound(ModelPrefix(name) + " is not in any model repository");
  }
  if (found.size() > 1) return Unavailable(std::string(kModelInTwoRepositoriesReason));
  return found.front();
}

Result<ModelSource> ModelRepository::Read(const std::string& name) const {
  RETURN_IF_ERROR(ValidateModelName(name));
  ASSIGN_OR_RETURN(std::filesystem::path model_dir, FindModelDir(name));
  const std::string prefix = ModelPrefix(name);
  auto text = ReadSmallFile(model_dir / "config.pbtxt", "config.pbtxt", kMaxModelConfigBytes);
  if (!text.ok()) return text.status().WithPrefix(prefix);
  auto config = ParseModelConfigText(*text, "config.pbtxt");
  if (!config.ok()) return config.status().WithPrefix(prefix);
  if (Status s = NormalizeModelConfig(name, *config); !s.ok()) return s.WithPrefix(prefix);
  return Finish(name, std::move(model_dir), std::move(config).value(), nullptr);
}

Result<ModelSource> ModelRepository::ReadWithOverride(const std::string& name,
                                                      const LoadOptions& options) const {
  if (!options.config_json.has_value() && options.files.empty()) return Read(name);
  RETURN_IF_ERROR(ValidateModelName(name));
  const std::string prefix = ModelPrefix(name);
  if (!options.config_json.has_value()) {
    return InvalidArgument(prefix + ": a file override needs a 'config' override too");
  }
  auto config = ParseModelConfigJson(*options.config_json);
  if (!config.ok()) return config.status().WithPrefix(prefix);
  if (Status s = NormalizeModelConfig(name, *config); !s.ok()) return s.WithPrefix(prefix);
  if (!allow_test_behaviors_) {
    for (std::string_view knob : kTestBehaviorParameters) {
      if (config->parameters().contains(std::string(knob))) {
        return InvalidArgument(prefix + ": config parameter '" + std::string(knob) +
                               "' is a test behaviour, refused in a load request unless the server "
                               "runs with --allow-test-behaviors");
      }
    }
  }

  if (options.files.empty()) {
    ASSIGN_OR_RETURN(std::filesystem::path model_dir, FindModelDir(name));
    return Finish(name, std::move(model_dir), std::move(config).value(), nullptr);
  }
  // Files: the private directory is the whole model directory; what is on disk (if any)
  // is not used, as in Triton.
  auto dir = PrivateModelDir::Create(tmp_root_, name, options.files);
  if (!dir.ok()) return dir.status().WithPrefix(prefix);
  std::filesystem::path model_dir = (*dir)->path();
  return Finish(name, std::move(model_dir), std::move(config).value(), std::move(dir).value());
}

Result<ModelSource> ModelRepository::Finish(
    const std::string& name, std::filesystem::path model_dir, inference::ModelConfig config,
    std::shared_ptr<const PrivateModelDir> private_dir) const {
  const std::string prefix = ModelPrefix(name);
  auto on_disk = ListVersionDirs(model_dir);
  if (!on_disk.ok()) return on_disk.status().WithPrefix(prefix);
  std::vector<int64_t> missing;
  std::vector<int64_t> versions = SelectVersions(config.version_policy(), *on_disk, &missing);
  for (int64_t v : missing) {
    spdlog::warn("{}: version {} is named by the version policy but its directory is not present",
                 prefix, v);
  }
  if (versions.empty()) {
    return InvalidArgument(prefix +
                           ": at least one version must be available under the version policy");
  }
  ModelSource source;
  source.name = name;
  for (int64_t v : versions) {
    source.version_fingerprints[v] = FingerprintTree(model_dir / std::to_string(v));
  }
  source.model_dir = std::move(model_dir);
  source.config_fingerprint = ConfigFingerprint(config);
  source.config = std::move(config);
  source.versions = std::move(versions);
  source.private_dir = std::move(private_dir);
  return source;
}

}  // namespace sluice::core

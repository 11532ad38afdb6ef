#pragma once
// The model repository: one or more root directories, each holding
// `<model>/config.pbtxt` and numeric version folders `<model>/<version>/`, as Triton's.
// It reads and validates; it never loads anything. The lifecycle calls ListModels() and
// Read() at start-up, on load, and on every poll (diffing the fingerprints).
//
// Thread-safety: constant after construction; every method may be called from any thread
// concurrently (each call reads the filesystem afresh).
//
// Messages: prefixed "model '<name>': ", never a host path (config errors read
// "model 'x': config.pbtxt:14:1: unknown field 'max_batch' in inference.ModelConfig").

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/inference_service.h"
#include "core/repository_private_dir.h"
#include "model_config.pb.h"

namespace sluice::core {

// Triton's reason for a model found in more than one root (repository index reason).
inline constexpr std::string_view kModelInTwoRepositoriesReason =
    "model appears in two or more repositories";

// Most entries hashed for one version fingerprint, and the deepest level descended; past
// the cap the fingerprint covers the entries listed first plus a "truncated" marker.
inline constexpr size_t kMaxFingerprintEntries = 100000;
inline constexpr int kMaxFingerprintDepth = 16;

// Everything the lifecycle needs to load one model.
struct ModelSource {
  std::string name;
  // Host path of the model directory (the private dir for a file override). Never in a
  // client-visible message.
  std::filesystem::path model_dir;
  inference::ModelConfig config;  // normalised (NormalizeModelConfig)
  std::vector<int64_t> versions;  // selected by the version policy among those on disk, ascending
  // For each selected version: a hash of the version directory's file names, sizes and
  // mtimes (recursive, bounded). Equal hashes = unchanged version (poll mode).
  std::map<int64_t, uint64_t> version_fingerprints;
  // Hash of the normalised config (deterministic serialisation): a changed config means
  // every version reloads.
  uint64_t config_fingerprint = 0;
  // Non-null only for a file override; keeps model_dir alive. Copy it into whatever must
  // outlive the read (each loaded version).
  std::shared_ptr<const PrivateModelDir> private_dir;
};

struct ModelRepositoryOptions {
  std::vector<std::filesystem::path> roots;  // --model-repository, in order; at least one
  // Where load-override directories are made; empty = std::filesystem::temp_directory_path().
  std::filesystem::path override_tmp_root;
  // Whether a config override may set the test behaviours (kTestBehaviorParameters); off,
  // such a load is refused (--allow-test-behaviors turns it on, for tests only).
  bool allow_test_behaviors_in_overrides = false;
};

class ModelRepository {
 public:
  // Each root, and the override tmp root, must exist and be a directory (InvalidArgument
  // naming it as given on the command line otherwise). Roots are canonicalised once here.
  // A model directory may be a symlink to anywhere: the roots are the operator's choice;
  // only names and paths from requests are confined.
  static Result<std::unique_ptr<ModelRepository>> Create(ModelRepositoryOptions options);

  // Names of the model directories across all roots, sorted, without duplicates (a model in
  // two roots is listed once; Read() reports it). Entries that are not directories, hidden
  // entries (leading '.'), and names that fail ValidateModelName are skipped (the latter
  // with a warning). An unreadable root is logged and skipped.
  std::vector<std::string> ListModels() const;

  // Reads one model from disk. Errors:
  // - InvalidArgument: invalid name (ValidateModelName), config.pbtxt missing, unparsable
  //   or invalid, no version available under the version policy;
  // - NotFound: "model 'x' is not in any model repository" (also for hidden names, which
  //   ListModels skips);
  // - Unavailable: exactly kModelInTwoRepositoriesReason (no prefix), so that the
  //   lifecycle can use the message as the index reason, as Triton does.
  Result<ModelSource> Read(const std::string& name) const;

  // Reads with Triton's load overrides. No config and no files: same as Read(). Config
  // only: the config JSON replaces config.pbtxt, the model directory is the one on disk
  // (NotFound if none). Config + files: the files are written to a private directory
  // (PrivateModelDir) that becomes the model directory; the model need not exist on disk
  // and what is on disk is not used. Files without config: InvalidArgument. The config is
  // validated before any file is written.
  // A refused file key writes nothing. A config that sets a test behaviour is refused
  // (InvalidArgument naming it) unless the options allow them.
  Result<ModelSource> ReadWithOverride(const std::string& name, const LoadOptions& options) const;

  const std::vector<std::filesystem::path>& roots() const { return roots_; }

 private:
  ModelRepository(std::vector<std::filesystem::path> roots, std::filesystem::path tmp_root,
                  bool allow_test_behaviors)
      : roots_(std::move(roots)), tmp_root_(std::move(tmp_root)),
        allow_test_behaviors_(allow_test_behaviors) {}

  // The model's directory: NotFound / Unavailable (two roots) as documented on Read().
  Result<std::filesystem::path> FindModelDir(const std::string& name) const;
  // Versions, fingerprints and the final ModelSource from a normalised config.
  Result<ModelSource> Finish(const std::string& name, std::filesystem::path model_dir,
                             inference::ModelConfig config,
                             std::shared_ptr<const PrivateModelDir> private_dir) const;

  // Constant after construction.
  const std::vector<std::filesystem::path> roots_;  // canonical
  const std::filesystem::path tmp_root_;
  const bool allow_test_behaviors_;
};

// Hash of a directory tree's entry names (relative), types, sizes and mtimes; symlinks are
// hashed by their target string, never followed; independent of listing order. Bounded by
// kMaxFingerprintEntries and kMaxFingerprintDepth. Errors reading (e.g. permission) are folded into
// the hash, not returned, so that a transient error looks like a change rather than hiding one.
uint64_t FingerprintTree(const std::filesystem::path& dir);

}  // namespace sluice::core

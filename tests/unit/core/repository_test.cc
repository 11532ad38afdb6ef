// ModelRepository: listing, reading, duplicates across roots, load overrides (and that a
// refused override writes nothing), and version fingerprints.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "core/model_repository.h"
#include "support/repository_test_util.h"

namespace sluice::core {
namespace {

using ::testing::ElementsAre;
using testing::FixtureDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::ReadFile;
using testing::ScratchDir;
using testing::WriteFile;

namespace fs = std::filesystem;

constexpr const char* kIdentityConfig = R"(
backend: "identity"
max_batch_size: 4
input [ { name: "INPUT0" data_type: TYPE_INT32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_INT32 dims: [ -1 ] } ]
)";

std::unique_ptr<ModelRepository> MakeRepo(std::vector<fs::path> roots, fs::path tmp = {}) {
  auto repo = ModelRepository::Create({std::move(roots), std::move(tmp)});
  EXPECT_TRUE(repo.ok()) << repo.status().ToString();
  return repo.ok() ? std::move(repo).value() : nullptr;
}

bool IsEmptyDir(const fs::path& dir) {
  return fs::is_empty(dir);
}

TEST(ModelRepositoryTest, CreateRefusesMissingRoot) {
  ScratchDir scratch;
  auto none = ModelRepository::Create({{}, {}});
  EXPECT_FALSE(none.ok());
  auto missing = ModelRepository::Create({{scratch.path() / "absent"}, {}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  auto twice = ModelRepository::Create({{scratch.path(), scratch.path()}, {}});
  EXPECT_FALSE(twice.ok());
}

TEST(ModelRepositoryTest, ReadsTheFixtureRepository) {
  auto repo = MakeRepo({FixtureDir() / "models"});
  ASSERT_NE(repo, nullptr);
  EXPECT_THAT(repo->ListModels(), ElementsAre("identity_fp32", "repeat_int32", "vllm_model"));
  for (const char* name : {"identity_fp32", "repeat_int32", "vllm_model"}) {
    auto source = repo->Read(name);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_EQ(source->name, name);
    EXPECT_EQ(source->config.name(), name);
    EXPECT_THAT(source->versions, ElementsAre(1));
    EXPECT_EQ(source->version_fingerprints.size(), 1u);
    EXPECT_EQ(source->private_dir, nullptr);
    EXPECT_TRUE(fs::exists(source->model_dir / "config.pbtxt"));
  }
  auto vllm = repo->Read("vllm_model");
  ASSERT_TRUE(vllm.ok());
  EXPECT_TRUE(vllm->config.model_transaction_policy().decoupled());
  EXPECT_EQ(vllm->config.output_size(), 6);
}

TEST(ModelRepositoryTest, ListSkipsFilesHiddenAndInvalidNames) {
  ScratchDir root;
  WriteFile(root.path() / "b" / "config.pbtxt", kIdentityConfig);
  WriteFile(root.path() / "a" / "config.pbtxt", kIdentityConfig);
  WriteFile(root.path() / "a file", "x");
  WriteFile(root.path() / "README.md", "x");
  fs::create_directory(root.path() / ".ipynb_checkpoints");
  fs::create_directory(root.path() / "bad name");
  fs::create_directory(root.path() / "mod\xc3\xa9le");
  auto repo = MakeRepo({root.path()});
  ASSERT_NE(repo, nullptr);
  EXPECT_THAT(repo->ListModels(), ElementsAre("a", "b"));
}

TEST(ModelRepositoryTest, ReadErrors) {
  ScratchDir root;
  fs::create_directories(root.path() / "noconfig" / "1");
  WriteFile(root.path() / "badconfig" / "config.pbtxt", "backend: \"identity\"\n\nmax_batch: 2\n");
  fs::create_directories(root.path() / "badconfig" / "1");
  WriteFile(root.path() / "noversion" / "config.pbtxt", kIdentityConfig);
  WriteFile(root.path() / "wrongname" / "config.pbtxt",
            std::string("name: \"other\"\n") + kIdentityConfig);
  fs::create_directories(root.path() / "wrongname" / "1");
  auto repo = MakeRepo({root.path()});
  ASSERT_NE(repo, nullptr);

  auto absent = repo->Read("absent");
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(absent.status().message(), "model 'absent' is not in any model repository");

  auto traversal = repo->Read("..");
  EXPECT_EQ(traversal.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(repo->Read("a/b").status().code(), StatusCode::kInvalidArgument);

  auto noconfig = repo->Read("noconfig");
  EXPECT_EQ(noconfig.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(noconfig.status().message(), HasSubstr("model 'noconfig': config.pbtxt"));

  auto badconfig = repo->Read("badconfig");
  EXPECT_EQ(badconfig.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(badconfig.status().message(), HasSubstr("model 'badconfig': config.pbtxt:3:"));
  EXPECT_THAT(badconfig.status().message(), HasSubstr("unknown field 'max_batch'"));

  auto noversion = repo->Read("noversion");
  EXPECT_EQ(noversion.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(noversion.status().message(), HasSubstr("at least one version"));

  EXPECT_EQ(repo->Read("wrongname").status().code(), StatusCode::kInvalidArgument);

  // No message carries the host path.
  for (const auto& r :
       {absent.status(), noconfig.status(), badconfig.status(), noversion.status()}) {
    EXPECT_THAT(r.message(), Not(HasSubstr(root.path().string())));
  }
}

TEST(ModelRepositoryTest, DuplicateModelInTwoRootsIsUnavailable) {
  ScratchDir root1;
  ScratchDir root2;
  for (const auto* root : {&root1, &root2}) {
    WriteFile(root->path() / "dup" / "config.pbtxt", kIdentityConfig);
    fs::create_directories(root->path() / "dup" / "1");
  }
  WriteFile(root2.path() / "only2" / "config.pbtxt", kIdentityConfig);
  fs::create_directories(root2.path() / "only2" / "1");
  auto repo = MakeRepo({root1.path(), root2.path()});
  ASSERT_NE(repo, nullptr);
  EXPECT_THAT(repo->ListModels(), ElementsAre("dup", "only2"));
  auto dup = repo->Read("dup");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(dup.status().message(), "model appears in two or more repositories");
  auto only2 = repo->Read("only2");
  ASSERT_TRUE(only2.ok()) << only2.status().ToString();
  EXPECT_EQ(only2->model_dir, root2.path() / "only2");
}

TEST(ModelRepositoryTest, VersionPolicyAppliesToDisk) {
  ScratchDir root;
  WriteFile(root.path() / "m" / "config.pbtxt",
            std::string(kIdentityConfig) + "version_policy { latest { num_versions: 2 } }");
  for (const char* v : {"1", "3", "10", "notaversion"})
    fs::create_directories(root.path() / "m" / v);
  WriteFile(root.path() / "s" / "config.pbtxt",
            std::string(kIdentityConfig) + "version_policy { specific { versions: [1, 2, 3] } }");
  for (const char* v : {"1", "3", "4"}) fs::create_directories(root.path() / "s" / v);
  auto repo = MakeRepo({root.path()});
  ASSERT_NE(repo, nullptr);
  auto m = repo->Read("m");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_THAT(m->versions, ElementsAre(3, 10));
  EXPECT_EQ(m->version_fingerprints.count(3), 1u);
  EXPECT_EQ(m->version_fingerprints.count(10), 1u);
  EXPECT_EQ(m->version_fingerprints.count(1), 0u);
  auto s = repo->Read("s");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_THAT(s->versions, ElementsAre(1, 3));
}

TEST(ModelRepositoryTest, FingerprintChangesOnlyForTheChangedVersion) {
  ScratchDir root;
  WriteFile(root.path() / "m" / "config.pbtxt",
            std::string(kIdentityConfig) + "version_policy { all {} }");
  WriteFile(root.path() / "m" / "1" / "weights.bin", "one");
  WriteFile(root.path() / "m" / "2" / "weights.bin", "two");
  WriteFile(root.path() / "m" / "2" / "sub" / "deep.bin", "deep");
  auto repo = MakeRepo({root.path()});
  ASSERT_NE(repo, nullptr);
  auto before = repo->Read("m");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_THAT(before->versions, ElementsAre(1, 2));

  // Nothing changed: same fingerprints.
  auto same = repo->Read("m");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->version_fingerprints, before->version_fingerprints);
  EXPECT_EQ(same->config_fingerprint, before->config_fingerprint);

  // A nested file of version 2 changes size: only version 2's fingerprint moves.
  WriteFile(root.path() / "m" / "2" / "sub" / "deep.bin", "deeper");
  auto after = repo->Read("m");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->version_fingerprints.at(1), before->version_fingerprints.at(1));
  EXPECT_NE(after->version_fingerprints.at(2), before->version_fingerprints.at(2));
  EXPECT_EQ(after->config_fingerprint, before->config_fingerprint);

  // Same size, new mtime: version 1 moves.
  const auto t = fs::last_write_time(root.path() / "m" / "1" / "weights.bin");
  fs::last_write_time(root.path() / "m" / "1" / "weights.bin", t + std::chrono::seconds(5));
  auto touched = repo->Read("m");
  ASSERT_TRUE(touched.ok());
  EXPECT_NE(touched->version_fingerprints.at(1), after->version_fingerprints.at(1));
  EXPECT_EQ(touched->version_fingerprints.at(2), after->version_fingerprints.at(2));

  // A new file (rename-style change) moves it too.
  WriteFile(root.path() / "m" / "1" / "extra.txt", "");
  auto added = repo->Read("m");
  ASSERT_TRUE(added.ok());
  EXPECT_NE(added->version_fingerprints.at(1), touched->version_fingerprints.at(1));

  // A config change moves the config fingerprint, not the versions'.
  WriteFile(
      root.path() / "m" / "config.pbtxt",
      std::string(kIdentityConfig) +
          "version_policy { all {} }\nparameters { key: \"k\" value { string_value: \"v\" } }");
  auto reconfigured = repo->Read("m");
  ASSERT_TRUE(reconfigured.ok()) << reconfigured.status().ToString();
  EXPECT_NE(reconfigured->config_fingerprint, added->config_fingerprint);
  EXPECT_EQ(reconfigured->version_fingerprints, added->version_fingerprints);
}

TEST(ModelRepositoryTest, FingerprintDoesNotFollowSymlinks) {
  ScratchDir root;
  ScratchDir outside;
  WriteFile(outside.path() / "big.bin", "x");
  WriteFile(root.path() / "m" / "config.pbtxt", kIdentityConfig);
  fs::create_directories(root.path() / "m" / "1");
  fs::create_directory_symlink(outside.path(), root.path() / "m" / "1" / "link");
  const uint64_t before = FingerprintTree(root.path() / "m" / "1");
  WriteFile(outside.path() / "big.bin", "xxxxxxxx");  // the target's content is not hashed
  EXPECT_EQ(FingerprintTree(root.path() / "m" / "1"), before);
}

TEST(ModelRepositoryTest, ConfigOverrideReplacesConfigPbtxt) {
  ScratchDir root;
  WriteFile(root.path() / "m" / "config.pbtxt", kIdentityConfig);
  fs::create_directories(root.path() / "m" / "1");
  fs::create_directories(root.path() / "m" / "2");
  auto repo = MakeRepo({root.path()});
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.config_json = R"({"backend": "repeat", "max_batch_size": 0,
    "version_policy": {"all": {}},
    "model_transaction_policy": {"decoupled": true}})";
  auto source = repo->ReadWithOverride("m", options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  EXPECT_EQ(source->config.backend(), "repeat");
  EXPECT_EQ(source->config.name(), "m");
  EXPECT_THAT(source->versions, ElementsAre(1, 2));
  EXPECT_EQ(source->model_dir, root.path() / "m");
  EXPECT_EQ(source->private_dir, nullptr);

  // Config-only override of a model that is nowhere on disk: not found.
  auto absent = repo->ReadWithOverride("absent", options);
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);

  // No override at all: same as Read.
  auto plain = repo->ReadWithOverride("m", LoadOptions{});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->config.backend(), "identity");
}

TEST(ModelRepositoryTest, InvalidJsonOverrideIsRefused) {
  ScratchDir root;
  ScratchDir tmp;
  WriteFile(root.path() / "m" / "config.pbtxt", kIdentityConfig);
  fs::create_directories(root.path() / "m" / "1");
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.config_json = "{\"backend\": \"identity\",";
  options.files["1/model.json"] = "{}";
  auto source = repo->ReadWithOverride("m", options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(), HasSubstr("model 'm': invalid model config JSON"));
  EXPECT_TRUE(IsEmptyDir(tmp.path()));
}

// Issue 19: a load request from the network could set the test behaviours (hang every
// unload, crash the stub, hold GPU memory). Refused unless the server allows them; a config
// on disk (the operator's) may still use them.
TEST(ModelRepositoryTest, TestBehavioursInAConfigOverrideNeedTheServerFlag) {
  ScratchDir root;
  ScratchDir tmp;
  WriteFile(root.path() / "m" / "config.pbtxt",
            std::string(kIdentityConfig) + R"(parameters { key: "ignore_shutdown" value { string_value: "true" } })");
  fs::create_directories(root.path() / "m" / "1");
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  EXPECT_TRUE(repo->Read("m").ok());
  for (const char* knob : {"ignore_shutdown", "hang_in_finalize", "crash_after_responses", "gpu_hold_mib"}) {
    LoadOptions options;
    options.config_json = std::string(R"({"backend": "identity", "parameters": {")") + knob +
                          R"(": {"string_value": "1"}}})";
    options.files["1/model.json"] = "{}";
    auto refused = repo->ReadWithOverride("m", options);
    ASSERT_FALSE(refused.ok()) << knob;
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(), HasSubstr(std::string("'") + knob + "' is a test behaviour"));
    EXPECT_THAT(refused.status().message(), HasSubstr("--allow-test-behaviors"));
    EXPECT_TRUE(IsEmptyDir(tmp.path())) << "nothing written for a refused load";

    auto allowed = ModelRepository::Create({{root.path()}, tmp.path(), true});
    ASSERT_TRUE(allowed.ok());
    auto source = (*allowed)->ReadWithOverride("m", options);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    EXPECT_TRUE(source->config.parameters().contains(knob));
  }
}

TEST(ModelRepositoryTest, FilesWithoutConfigAreRefused) {
  ScratchDir root;
  ScratchDir tmp;
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.files["1/model.json"] = "{}";
  auto source = repo->ReadWithOverride("m", options);
  ASSERT_FALSE(source.ok());
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(source.status().message(), HasSubstr("config"));
  EXPECT_TRUE(IsEmptyDir(tmp.path()));
}

TEST(ModelRepositoryTest, FileOverrideWritesAPrivateDirectoryRemovedWithTheLastOwner) {
  ScratchDir root;
  ScratchDir tmp;
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.config_json = R"({"backend": "vllm", "instance_group": [{"kind": "KIND_MODEL"}]})";
  options.files["1/model.json"] = R"({"model": "tiny"})";
  options.files["1/tokenizer/vocab.bin"] = std::string("\0\1\2\xff", 4);
  options.files["3/weights.bin"] = "w";
  // The model does not exist on disk at all: allowed with config + files.
  auto source = repo->ReadWithOverride("fresh", options);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  ASSERT_NE(source->private_dir, nullptr);
  const fs::path dir = source->model_dir;
  EXPECT_EQ(dir, source->private_dir->path());
  EXPECT_EQ(fs::canonical(dir.parent_path()), tmp.path());
  EXPECT_EQ(ReadFile(dir / "1" / "model.json"), R"({"model": "tiny"})");
  EXPECT_EQ(ReadFile(dir / "1" / "tokenizer" / "vocab.bin"), std::string("\0\1\2\xff", 4));
  EXPECT_THAT(source->versions, ElementsAre(3));  // latest{1} among {1, 3}
  EXPECT_TRUE(source->config.model_transaction_policy().decoupled());

  // Shared ownership: the directory outlives the ModelSource while a copy holds it.
  std::shared_ptr<const PrivateModelDir> held = source->private_dir;
  source = Status(StatusCode::kInternal, "dropped");
  EXPECT_TRUE(fs::exists(dir / "1" / "model.json"));
  held.reset();
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(IsEmptyDir(tmp.path()));
}

TEST(ModelRepositoryTest, EscapingOverrideWritesNothing) {
  ScratchDir root;
  ScratchDir tmp;
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  const bool beside_existed = fs::exists(tmp.path().parent_path() / "x");  // someone else's
  for (const char* bad : {"../../x", "1/../../x", "/etc/passwd", "1/./a", "1//a", "..", ""}) {
    LoadOptions options;
    options.config_json = R"({"backend": "identity"})";
    options.files["1/ok.txt"] = "fine";  // sorts before some bad keys, after others
    options.files[bad] = "evil";
    auto source = repo->ReadWithOverride("m", options);
    ASSERT_FALSE(source.ok()) << bad;
    EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(IsEmptyDir(tmp.path())) << bad;
    EXPECT_THAT(source.status().message(), Not(HasSubstr(tmp.path().string()))) << bad;
  }
  // Nothing landed beside the tmp root either.
  if (!beside_existed) {
    EXPECT_FALSE(fs::exists(tmp.path().parent_path() / "x"));
  }
}

TEST(ModelRepositoryTest, OverrideFileConflictCleansUp) {
  ScratchDir root;
  ScratchDir tmp;
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.config_json = R"({"backend": "identity"})";
  options.files["1/a"] = "file";
  options.files["1/a/b"] = "needs 1/a to be a directory";
  auto source = repo->ReadWithOverride("m", options);
  ASSERT_FALSE(source.ok());
  EXPECT_TRUE(IsEmptyDir(tmp.path()));
}

TEST(ModelRepositoryTest, ConcurrentReadsAndOverrides) {
  ScratchDir root;
  ScratchDir tmp;
  WriteFile(root.path() / "m" / "config.pbtxt", kIdentityConfig);
  WriteFile(root.path() / "m" / "1" / "w.bin", "w");
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t % 2 == 0) {
          auto s = repo->Read("m");
          if (!s.ok() || s->versions != std::vector<int64_t>{1}) ++failures;
        } else {
          LoadOptions options;
          options.config_json = R"({"backend": "identity"})";
          options.files["2/w.bin"] = std::to_string(t * 100 + i);
          auto s = repo->ReadWithOverride("m", options);
          if (!s.ok() || ReadFile(s->model_dir / "2" / "w.bin") != std::to_string(t * 100 + i)) {
            ++failures;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(IsEmptyDir(tmp.path()));  // every private dir went with its last owner
}

TEST(ModelRepositoryTest, CreateRefusesMissingOverrideTmpRoot) {
  ScratchDir root;
  auto repo = ModelRepository::Create({{root.path()}, root.path() / "absent"});
  EXPECT_EQ(repo.status().code(), StatusCode::kInvalidArgument);
}

TEST(ModelRepositoryTest, OverrideOfInvalidNameIsRefused) {
  ScratchDir root;
  ScratchDir tmp;
  auto repo = MakeRepo({root.path()}, tmp.path());
  ASSERT_NE(repo, nullptr);
  LoadOptions options;
  options.config_json = R"({"backend": "identity"})";
  options.files["1/a"] = "x";
  EXPECT_EQ(repo->ReadWithOverride("..", options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(repo->ReadWithOverride("a/b", options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(IsEmptyDir(tmp.path()));
}

}  // namespace
}  // namespace sluice::core

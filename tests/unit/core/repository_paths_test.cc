// Model names, the path guard, and version selection.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/repository_path_guard.h"
#include "core/repository_version_policy.h"
#include "support/repository_test_util.h"

namespace sluice::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::ScratchDir;
using testing::WriteFile;

TEST(ModelNameTest, AcceptsTritonNames) {
  for (const char* name :
       {"identity", "vllm_model", "Qwen2.5-0.5B", "a", "_", "a.b-c_d", "..a", "a.."}) {
    EXPECT_TRUE(ValidateModelName(name).ok()) << name;
  }
  EXPECT_TRUE(ValidateModelName(std::string(kMaxModelNameLength, 'x')).ok());
}

TEST(ModelNameTest, RefusesTraversalAndOddCharacters) {
  const std::string nul_name("a\0b", 3);
  for (std::string name :
       {std::string(".."), std::string("."), std::string("a/b"), std::string(""),
        std::string("../x"), std::string("a b"), std::string("mod\xc3\xa9le"), std::string("x\\y"),
        nul_name, std::string("a\nb"), std::string(kMaxModelNameLength + 1, 'x')}) {
    Status s = ValidateModelName(name);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name;
    // Untrusted bytes never reach the message raw.
    EXPECT_THAT(s.message(), Not(HasSubstr("\n"))) << name;
    EXPECT_THAT(s.message(), Not(HasSubstr("\xc3"))) << name;
  }
}

TEST(ResolveUnderTest, ResolvesInsideRoot) {
  ScratchDir root;
  WriteFile(root.path() / "1" / "model.json", "{}");
  auto existing = ResolveUnder(root.path(), "1/model.json");
  ASSERT_TRUE(existing.ok()) << existing.status().ToString();
  EXPECT_EQ(*existing, root.path() / "1" / "model.json");
  auto fresh = ResolveUnder(root.path(), "2/sub/new.bin");  // need not exist
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(*fresh, root.path() / "2" / "sub" / "new.bin");
}

TEST(ResolveUnderTest, RefusesTraversalAndAbsolutePaths) {
  ScratchDir root;
  for (const char* bad : {"../../x", "..", "1/../../x", "1/../2", "/etc/passwd", "./a", "a//b",
                          "a/", "", "a\\..\\b"}) {
    auto r = ResolveUnder(root.path(), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    // The message names the offending path, never the root.
    EXPECT_THAT(r.status().message(), Not(HasSubstr(root.path().string()))) << bad;
  }
  EXPECT_FALSE(ResolveUnder(root.path(), std::string(kMaxRelativePathLength + 1, 'a')).ok());
  std::string deep;
  for (size_t i = 0; i <= kMaxRelativePathComponents; ++i) deep += "d/";
  deep += "f";
  EXPECT_FALSE(ResolveUnder(root.path(), deep).ok());
}

TEST(ResolveUnderTest, RefusesSymlinkLeavingRoot) {
  ScratchDir root;
  ScratchDir outside;
  std::filesystem::create_directory_symlink(outside.path(), root.path() / "link");
  std::filesystem::create_symlink("/etc/passwd", root.path() / "passwd");
  std::filesystem::create_directory(root.path() / "inner");
  std::filesystem::create_directory_symlink(root.path() / "inner", root.path() / "ok_link");

  auto through_dir = ResolveUnder(root.path(), "link/x");
  ASSERT_FALSE(through_dir.ok());
  EXPECT_THAT(through_dir.status().message(), HasSubstr("escapes"));
  EXPECT_FALSE(ResolveUnder(root.path(), "link").ok());
  EXPECT_FALSE(ResolveUnder(root.path(), "passwd").ok());
  // A symlink that stays inside is fine.
  auto inside = ResolveUnder(root.path(), "ok_link/x");
  ASSERT_TRUE(inside.ok()) << inside.status().ToString();
  EXPECT_EQ(*inside, root.path() / "inner" / "x");
}

TEST(ResolveUnderTest, RefusesDanglingSymlink) {
  ScratchDir root;
  ScratchDir outside;
  // Points outside at something that does not exist yet: writing through it would create
  // the target outside the root.
  std::filesystem::create_symlink(outside.path() / "later", root.path() / "dangling");
  std::filesystem::create_directory_symlink(outside.path() / "later_dir",
                                            root.path() / "dangling_dir");
  EXPECT_FALSE(ResolveUnder(root.path(), "dangling").ok());
  auto through = ResolveUnder(root.path(), "dangling_dir/x");
  ASSERT_FALSE(through.ok());
  EXPECT_THAT(through.status().message(), HasSubstr("symlink"));
  EXPECT_THAT(through.status().message(), Not(HasSubstr(outside.path().string())));
}

TEST(ResolveUnderTest, RelativePathChecksNameTheCaller) {
  EXPECT_TRUE(ValidateRelativePath("1/model.json").ok());
  EXPECT_TRUE(ValidateRelativePath("a..b/..c").ok());  // dots inside names are fine
  Status s = ValidateRelativePath("../x", "override file");
  EXPECT_THAT(s.message(), HasSubstr("override file '../x'"));
}

TEST(ResolveUnderTest, RootMayItselfBeASymlink) {
  ScratchDir real;
  ScratchDir holder;
  std::filesystem::create_directory_symlink(real.path(), holder.path() / "root");
  auto r = ResolveUnder(holder.path() / "root", "1/a");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, real.path() / "1" / "a");
}

inference::ModelVersionPolicy Latest(uint32_t n) {
  inference::ModelVersionPolicy p;
  p.mutable_latest()->set_num_versions(n);
  return p;
}

TEST(VersionPolicyTest, Latest) {
  EXPECT_THAT(SelectVersions(Latest(2), {1, 3, 10}), ElementsAre(3, 10));
  EXPECT_THAT(SelectVersions(Latest(2), {10, 1, 3}), ElementsAre(3, 10));  // any order in
  EXPECT_THAT(SelectVersions(Latest(1), {1, 3, 10}), ElementsAre(10));
  EXPECT_THAT(SelectVersions(Latest(0), {1, 3, 10}), ElementsAre(10));  // 0 counts as 1
  EXPECT_THAT(SelectVersions(Latest(5), {1, 3, 10}), ElementsAre(1, 3, 10));
  EXPECT_THAT(SelectVersions(inference::ModelVersionPolicy(), {2, 7}), ElementsAre(7));
  EXPECT_THAT(SelectVersions(Latest(2), {}), IsEmpty());
}

TEST(VersionPolicyTest, All) {
  inference::ModelVersionPolicy p;
  p.mutable_all();
  EXPECT_THAT(SelectVersions(p, {10, 1, 3, 3}), ElementsAre(1, 3, 10));
}

TEST(VersionPolicyTest, SpecificSkipsMissingVersions) {
  inference::ModelVersionPolicy p;
  p.mutable_specific()->add_versions(3);
  p.mutable_specific()->add_versions(4);
  p.mutable_specific()->add_versions(1);
  std::vector<int64_t> missing;
  EXPECT_THAT(SelectVersions(p, {1, 2, 3, 10}, &missing), ElementsAre(1, 3));
  EXPECT_THAT(missing, ElementsAre(4));
  inference::ModelVersionPolicy none;
  none.mutable_specific()->add_versions(9);
  EXPECT_THAT(SelectVersions(none, {1, 2}, &missing), IsEmpty());
  EXPECT_THAT(missing, ElementsAre(9));
}

TEST(VersionPolicyTest, ListsOnlyNumericDirectories) {
  ScratchDir model;
  for (const char* dir : {"1", "3", "10", "0", "01", "-1", "v2", "1a", "99999999999999999999"}) {
    std::filesystem::create_directory(model.path() / dir);
  }
  WriteFile(model.path() / "7", "a file, not a version");
  WriteFile(model.path() / "config.pbtxt", "");
  std::filesystem::create_directory(model.path() / "real");
  std::filesystem::create_directory_symlink(model.path() / "real", model.path() / "12");
  auto versions = ListVersionDirs(model.path());
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  EXPECT_THAT(*versions, ElementsAre(0, 1, 3, 10, 12));
}

TEST(VersionPolicyTest, UnreadableModelDirIsAnErrorWithoutPath) {
  ScratchDir scratch;
  auto versions = ListVersionDirs(scratch.path() / "absent");
  ASSERT_FALSE(versions.ok());
  EXPECT_THAT(versions.status().message(), Not(HasSubstr(scratch.path().string())));
}

}  // namespace
}  // namespace sluice::core

// The CUDA device module's loader (backends/llm/model/cuda_module_loader.h): where it looks,
// the errors that name the file when the module is missing, unreadable or of another build,
// and, in a CUDA build, the real module opened from the build tree (beside sluice-stub). On a
// machine without a GPU that module counts no device and its create says why.

#include "backends/llm/model/cuda_module_loader.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace sluice::llm {
namespace {

namespace fs = std::filesystem;

// A fresh empty directory, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "sluice-cuda-module-XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? fs::path(pattern) : fs::path();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(CudaModuleLoaderTest, LooksBesideTheExecutableFirstThenInTheInstallDir) {
  const auto dirs = CudaModuleDirs();
  ASSERT_FALSE(dirs.empty());
  EXPECT_EQ(dirs.front(), fs::read_symlink("/proc/self/exe").parent_path());
  EXPECT_EQ(dirs.back().filename(), "sluice");  // <prefix>/lib/sluice
}

TEST(CudaModuleLoaderTest, AMissingModuleIsAnErrorNamingTheFileAndWhereItLooked) {
  TempDir a, b;
  ASSERT_FALSE(a.path().empty());
  auto opened = OpenCudaModule({a.path(), b.path()});
  ASSERT_FALSE(opened.ok());
  const std::string& m = opened.status().message();
  EXPECT_EQ(opened.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(m, "libsluice_cuda_device.so")) << m;
  EXPECT_TRUE(Contains(m, "was not found")) << m;
  EXPECT_TRUE(Contains(m, a.path().string()) && Contains(m, b.path().string())) << m;
}

TEST(CudaModuleLoaderTest, AFileThatIsNoLibraryIsAnErrorWithDlerror) {
  TempDir dir;
  std::ofstream(dir.path() / kCudaModuleFile) << "not an ELF file\n";
  auto opened = OpenCudaModule({dir.path()});
  ASSERT_FALSE(opened.ok());
  const std::string& m = opened.status().message();
  EXPECT_EQ(opened.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(
      m, "cannot open the CUDA device module " + (dir.path() / kCudaModuleFile).string() + ": "))
      << m;
  // dlerror() names the file too, and why (an invalid ELF header, a file too short).
  EXPECT_GT(m.size(),
            ("cannot open the CUDA device module " + (dir.path() / kCudaModuleFile).string() + ": ")
                .size())
      << m;
}

TEST(CudaModuleLoaderTest, ALibraryWithoutTheEntryPointsIsAnError) {
  // libc under the module's name: a real shared library that has no sluice_cuda_device_*.
  Dl_info info{};
  ASSERT_NE(dladdr(reinterpret_cast<void*>(&getenv), &info), 0);
  TempDir dir;
  fs::create_symlink(info.dli_fname, dir.path() / kCudaModuleFile);
  auto opened = OpenCudaModule({dir.path()});
  ASSERT_FALSE(opened.ok());
  const std::string& m = opened.status().message();
  EXPECT_TRUE(Contains(m, (dir.path() / kCudaModuleFile).string())) << m;
  EXPECT_TRUE(Contains(m, "has no sluice_cuda_device_count_v1")) << m;
}

TEST(CudaModuleLoaderTest, TheFirstDirectoryWithTheFileWins) {
  TempDir empty, broken;
  std::ofstream(broken.path() / kCudaModuleFile) << "x";
  auto opened = OpenCudaModule({empty.path(), broken.path()});
  ASSERT_FALSE(opened.ok());
  EXPECT_TRUE(Contains(opened.status().message(), broken.path().string()))
      << opened.status().message();
}

#ifdef SLUICE_CUDA_MODULE_BUILD_DIR
// The module the build wrote beside sluice-stub: it opens, and without a GPU it counts none
// and refuses a device with the reason (the stub's "KIND_GPU asked, but no GPU is usable").
TEST(CudaModuleLoaderTest, TheBuiltModuleOpensAndAnswers) {
  auto opened = OpenCudaModule({SLUICE_CUDA_MODULE_BUILD_DIR});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::string why;
  const int n = opened->count(&why);
  if (n > 0) GTEST_SKIP() << n << " GPUs: creating a device is cuda_kernels_test's job";
  EXPECT_FALSE(why.empty());
  const CudaDeviceOptions options{.device_id = 0};
  Result<std::unique_ptr<Device>> device = Internal("unset");
  opened->create(&options, &device);
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(device.status().message(), "no usable CUDA GPU"))
      << device.status().ToString();
}
#endif

}  // namespace
}  // namespace sluice::llm

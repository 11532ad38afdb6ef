#include "backends/llm/model/cuda_module_loader.h"

#include <dlfcn.h>

#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#ifndef SLUICE_CUDA_MODULE_INSTALL_DIR
#error "SLUICE_CUDA_MODULE_INSTALL_DIR (<prefix>/lib/sluice) comes from model/CMakeLists.txt"
#endif

namespace sluice::llm {

namespace {

std::mutex process_mu;
std::optional<CudaDeviceEntryPoints> process_device;  // guarded by process_mu

}  // namespace

std::vector<std::filesystem::path> CudaModuleDirs() {
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path());
  const std::filesystem::path installed = SLUICE_CUDA_MODULE_INSTALL_DIR;
  if (dirs.empty() || dirs.front() != installed) dirs.push_back(installed);
  return dirs;
}

Result<CudaDeviceEntryPoints> OpenCudaModule(const std::vector<std::filesystem::path>& dirs) {
  std::string looked;
  for (const std::filesystem::path& dir : dirs) {
    const std::filesystem::path file = dir / kCudaModuleFile;
    std::error_code ec;
    if (!std::filesystem::exists(file, ec)) {
      looked += (looked.empty() ? "" : ", ") + dir.string();
      continue;
    }
    void* lib = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      return Unavailable("cannot open the CUDA device module " + file.string() + ": " +
                         (why != nullptr ? why : "dlopen failed"));
    }
    CudaDeviceEntryPoints entry;
    entry.count = reinterpret_cast<CudaDeviceCountFn>(dlsym(lib, kCudaDeviceCountSymbol));
    entry.create = reinterpret_cast<CudaDeviceCreateFn>(dlsym(lib, kCudaDeviceCreateSymbol));
    if (entry.count == nullptr || entry.create == nullptr) {
      // dlerror's text is freed by the next dl call (dlclose): copied first.
      const char* error = dlerror();
      const std::string why = error != nullptr ? error : "dlsym failed";
      const std::string missing =
          entry.count == nullptr ? kCudaDeviceCountSymbol : kCudaDeviceCreateSymbol;
      dlclose(lib);  // nothing of it ran but its static initialisers
      return Unavailable("the CUDA device module " + file.string() + " has no " + missing +
                         " (a module of another Sluice build?): " + why);
    }
    return entry;
  }
  return Unavailable(std::string("the CUDA device module ") + kCudaModuleFile +
                     " was not found (looked in " + looked + ")");
}

Result<CudaDeviceEntryPoints> ProcessCudaDevice() {
  std::lock_guard lock(process_mu);
  if (process_device) return *process_device;
  ASSIGN_OR_RETURN(CudaDeviceEntryPoints entry, OpenCudaModule(CudaModuleDirs()));
  process_device = entry;
  return entry;
}

void UseLinkedCudaDevice(CudaDeviceEntryPoints entry_points) {
  std::lock_guard lock(process_mu);
  process_device = entry_points;
}

}  // namespace sluice::llm

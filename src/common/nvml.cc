#include "common/nvml.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstring>

#include "common/thread_annotations.h"

// NVML's C API, declared here (no nvml.h on CPU machines). Only the handful of calls Sluice
// needs, with the ABI of the versioned symbols.
namespace {

using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorInsufficientSize = 7;

struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

// nvmlProcessInfo_v1_t (16 bytes) and nvmlProcessInfo_v2_t (24 bytes). R535 drivers briefly
// used a 32-byte struct for the _v3 call (an extra usedGpuCcProtectedMemory); the stride is
// therefore probed (see DecodeProcesses).
struct ProcessInfoV1 {
  unsigned int pid;
  unsigned long long used_gpu_memory;
};
static_assert(sizeof(ProcessInfoV1) == 16);

using InitFn = nvmlReturn_t (*)();
using ShutdownFn = nvmlReturn_t (*)();
using CountFn = nvmlReturn_t (*)(unsigned int*);
using HandleFn = nvmlReturn_t (*)(unsigned int, nvmlDevice_t*);
using StringFn = nvmlReturn_t (*)(nvmlDevice_t, char*, unsigned int);
using MemoryFn = nvmlReturn_t (*)(nvmlDevice_t, NvmlMemory*);
using ProcessesFn = nvmlReturn_t (*)(nvmlDevice_t, unsigned int*, void*);
using ErrorStringFn = const char* (*)(nvmlReturn_t);

constexpr unsigned long long kNoValue = ~0ull;  // NVML_VALUE_NOT_AVAILABLE
constexpr unsigned int kMaxProcesses = 4096;

}  // namespace

namespace sluice::nvml {

struct Nvml::Impl {
  void* lib = nullptr;
  ShutdownFn shutdown = nullptr;
  CountFn count = nullptr;
  HandleFn handle = nullptr;
  StringFn uuid = nullptr;
  StringFn name = nullptr;
  MemoryFn memory = nullptr;
  ProcessesFn processes_v3 = nullptr;
  ProcessesFn processes_v2 = nullptr;
  ProcessesFn processes_v1 = nullptr;
  ErrorStringFn error_string = nullptr;
  // NVML is documented thread-safe; the mutex only keeps our probe-and-retry loops simple.
  mutable Mutex mu;

  std::string Error(const char* what, nvmlReturn_t rc) const {
    std::string msg = error_string ? error_string(rc) : "error";
    return std::string("NVML ") + what + ": " + msg + " (" + std::to_string(rc) + ")";
  }
};

namespace {

template <class Fn>
Fn Sym(void* lib, const char* name) {
  return reinterpret_cast<Fn>(dlsym(lib, name));
}

// Reads `count` entries written with an unknown stride (16, 24 or 32 bytes). A stride is
// plausible when every pid is non-zero and every memory value is below 2^50 or "not
// available"; the smallest plausible candidate of the call's own generation wins.
std::vector<ProcessMemory> DecodeProcesses(const unsigned char* buf, unsigned count,
                                           std::initializer_list<size_t> strides) {
  for (size_t stride : strides) {
    std::vector<ProcessMemory> out;
    bool plausible = true;
    for (unsigned i = 0; i < count && plausible; ++i) {
      unsigned int pid;
      unsigned long long used;
      std::memcpy(&pid, buf + i * stride, sizeof pid);
      std::memcpy(&used, buf + i * stride + 8, sizeof used);
      if (pid == 0 || (used != kNoValue && used >= (1ull << 50))) plausible = false;
      out.push_back({static_cast<pid_t>(pid), used == kNoValue ? 0 : used});
    }
    if (plausible) return out;
  }
  return {};
}

}  // namespace

std::unique_ptr<Nvml> Nvml::Load() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return nullptr;
  auto impl = std::make_unique<Impl>();
  impl->lib = lib;
  auto init = Sym<InitFn>(lib, "nvmlInit_v2");
  impl->shutdown = Sym<ShutdownFn>(lib, "nvmlShutdown");
  impl->count = Sym<CountFn>(lib, "nvmlDeviceGetCount_v2");
  impl->handle = Sym<HandleFn>(lib, "nvmlDeviceGetHandleByIndex_v2");
  impl->uuid = Sym<StringFn>(lib, "nvmlDeviceGetUUID");
  impl->name = Sym<StringFn>(lib, "nvmlDeviceGetName");
  impl->memory = Sym<MemoryFn>(lib, "nvmlDeviceGetMemoryInfo");
  impl->processes_v3 = Sym<ProcessesFn>(lib, "nvmlDeviceGetComputeRunningProcesses_v3");
  impl->processes_v2 = Sym<ProcessesFn>(lib, "nvmlDeviceGetComputeRunningProcesses_v2");
  impl->processes_v1 = Sym<ProcessesFn>(lib, "nvmlDeviceGetComputeRunningProcesses");
  impl->error_string = Sym<ErrorStringFn>(lib, "nvmlErrorString");
  if (!init || !impl->shutdown || !impl->count || !impl->handle || !impl->memory ||
      init() != kNvmlSuccess) {
    dlclose(lib);
    return nullptr;
  }
  std::unique_ptr<Nvml> nvml(new Nvml());
  nvml->impl_ = std::move(impl);
  return nvml;
}

Nvml::~Nvml() {
  if (impl_ && impl_->lib) {
    impl_->shutdown();
    dlclose(impl_->lib);
  }
}

Result<std::vector<GpuInfo>> Nvml::Gpus() const {
  MutexLock lock(impl_->mu);
  unsigned int count = 0;
  if (nvmlReturn_t rc = impl_->count(&count); rc != kNvmlSuccess) {
    return Internal(impl_->Error("device count", rc));
  }
  std::vector<GpuInfo> gpus;
  for (unsigned int i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    if (nvmlReturn_t rc = impl_->handle(i, &dev); rc != kNvmlSuccess) {
      return Internal(impl_->Error(("device " + std::to_string(i)).c_str(), rc));
    }
    GpuInfo g;
    g.index = i;
    char buf[256] = {};
    if (impl_->uuid && impl_->uuid(dev, buf, sizeof buf - 1) == kNvmlSuccess) g.uuid = buf;
    std::memset(buf, 0, sizeof buf);
    if (impl_->name && impl_->name(dev, buf, sizeof buf - 1) == kNvmlSuccess) g.name = buf;
    NvmlMemory mem{};
    if (nvmlReturn_t rc = impl_->memory(dev, &mem); rc != kNvmlSuccess) {
      return Internal(impl_->Error(("memory of device " + std::to_string(i)).c_str(), rc));
    }
    g.memory_total_bytes = mem.total;
    g.memory_used_bytes = mem.used;
    gpus.push_back(std::move(g));
  }
  return gpus;
}

Result<std::vector<ProcessMemory>> Nvml::ComputeProcesses(unsigned index) const {
  MutexLock lock(impl_->mu);
  nvmlDevice_t dev = nullptr;
  if (nvmlReturn_t rc = impl_->handle(index, &dev); rc != kNvmlSuccess) {
    return NotFound(impl_->Error(("device " + std::to_string(index)).c_str(), rc));
  }
  struct Variant {
    ProcessesFn fn;
    std::initializer_list<size_t> strides;
  };
  const Variant variants[] = {{impl_->processes_v3, {24, 32}},
                              {impl_->processes_v2, {24}},
                              {impl_->processes_v1, {16}}};
  nvmlReturn_t last = kNvmlSuccess;
  for (const Variant& v : variants) {
    if (!v.fn) continue;
    // Ask with room to spare; grow while NVML says the buffer is too small (processes come
    // and go between calls).
    unsigned int capacity = 64;
    while (true) {
      std::vector<unsigned char> buf(static_cast<size_t>(capacity) * 32, 0);
      unsigned int count = capacity;
      nvmlReturn_t rc = v.fn(dev, &count, buf.data());
      if (rc == kNvmlErrorInsufficientSize && capacity < kMaxProcesses) {
        capacity = std::min(kMaxProcesses, std::max(capacity * 2, count + 16));
        continue;
      }
      if (rc != kNvmlSuccess) {
        last = rc;
        break;
      }
      count = std::min(count, capacity);
      return DecodeProcesses(buf.data(), count, v.strides);
    }
  }
  return Internal(impl_->Error("compute processes", last));
}

uint64_t Nvml::ProcessMemoryBytes(pid_t pid) const {
  auto gpus = Gpus();
  if (!gpus.ok()) return 0;
  uint64_t total = 0;
  for (const GpuInfo& g : *gpus) {
    auto procs = ComputeProcesses(g.index);
    if (!procs.ok()) continue;
    for (const ProcessMemory& p : *procs) {
      if (p.pid == pid) total += p.used_bytes;
    }
  }
  return total;
}

}  // namespace sluice::nvml

#include "stub/gpu_hold.h"

#include <dlfcn.h>

#include <string>

namespace sluice::stub {

// The few driver entry points used, with the driver's C signatures (CUresult = int,
// CUdevice = int, CUcontext = opaque pointer, CUdeviceptr = 64-bit integer).
struct GpuHold::Driver {
  void* lib = nullptr;
  int (*cuInit)(unsigned) = nullptr;
  int (*cuDeviceGet)(int*, int) = nullptr;
  int (*cuDevicePrimaryCtxRetain)(void**, int) = nullptr;
  int (*cuDevicePrimaryCtxRelease)(int) = nullptr;
  int (*cuCtxSetCurrent)(void*) = nullptr;
  int (*cuMemAlloc)(uint64_t*, size_t) = nullptr;
  int (*cuMemFree)(uint64_t) = nullptr;
  ~Driver() {
    if (lib != nullptr) dlclose(lib);
  }
};

namespace {
template <typename F>
bool Load(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  return fn != nullptr;
}
}  // namespace

Result<std::unique_ptr<GpuHold>> GpuHold::Allocate(int ordinal, uint64_t mib) {
  std::unique_ptr<GpuHold> hold(new GpuHold());
  hold->driver_ = std::make_unique<Driver>();
  Driver& d = *hold->driver_;
  d.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (d.lib == nullptr) return Unavailable("no CUDA driver (libcuda.so.1 not found)");
  if (!Load(d.lib, "cuInit", d.cuInit) || !Load(d.lib, "cuDeviceGet", d.cuDeviceGet) ||
      !Load(d.lib, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain) ||
      !Load(d.lib, "cuDevicePrimaryCtxRelease_v2", d.cuDevicePrimaryCtxRelease) ||
      !Load(d.lib, "cuCtxSetCurrent", d.cuCtxSetCurrent) ||
      !Load(d.lib, "cuMemAlloc_v2", d.cuMemAlloc) || !Load(d.lib, "cuMemFree_v2", d.cuMemFree))
    return Unavailable("the CUDA driver lacks an expected entry point");
  if (int rc = d.cuInit(0); rc != 0) return Unavailable("cuInit failed with error " + std::to_string(rc));
  if (int rc = d.cuDeviceGet(&hold->device_, ordinal); rc != 0)
    return Unavailable("no GPU " + std::to_string(ordinal) + " (error " + std::to_string(rc) + ")");
  if (int rc = d.cuDevicePrimaryCtxRetain(&hold->context_, hold->device_); rc != 0) {
    hold->context_ = nullptr;
    return Unavailable("cannot create a context on GPU " + std::to_string(ordinal) + " (error " +
                       std::to_string(rc) + ")");
  }
  (void)d.cuCtxSetCurrent(hold->context_);
  if (int rc = d.cuMemAlloc(&hold->pointer_, static_cast<size_t>(mib) << 20); rc != 0) {
    hold->pointer_ = 0;
    return Unavailable("cannot allocate " + std::to_string(mib) + " MiB on GPU " +
                       std::to_string(ordinal) + " (error " + std::to_string(rc) + ")");
  }
  return hold;
}

GpuHold::~GpuHold() {
  if (!driver_) return;
  if (pointer_ != 0) (void)driver_->cuMemFree(pointer_);
  if (context_ != nullptr) (void)driver_->cuDevicePrimaryCtxRelease(device_);
}

}  // namespace sluice::stub

#include "backends/llm/device/cuda/nccl_collective.h"

#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "backends/llm/device/cuda/cuda_device.h"
#include "backends/llm/device/cuda/cuda_memory.h"

#if SLUICE_HAVE_NCCL
#include <dlfcn.h>
#include <nccl.h>
#endif

namespace sluice::llm {

#if SLUICE_HAVE_NCCL

namespace {

// NCCL is opened when tensor parallelism first needs it, not linked: a GPU machine without
// libnccl still serves single-GPU models.
struct NcclApi {
  decltype(&ncclGetUniqueId) get_unique_id = nullptr;
  decltype(&ncclCommInitRank) comm_init_rank = nullptr;
  decltype(&ncclAllReduce) all_reduce = nullptr;
  decltype(&ncclCommDestroy) comm_destroy = nullptr;
  decltype(&ncclGetErrorString) error_string = nullptr;
  std::string error;  // why it could not be opened
};

const NcclApi& Nccl() {
  static const NcclApi api = [] {
    NcclApi a;
    void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      a.error = std::string("cannot open libnccl.so.2: ") + dlerror();
      return a;
    }
    auto sym = [&](const char* name) { return dlsym(lib, name); };
    a.get_unique_id = reinterpret_cast<decltype(a.get_unique_id)>(sym("ncclGetUniqueId"));
    a.comm_init_rank = reinterpret_cast<decltype(a.comm_init_rank)>(sym("ncclCommInitRank"));
    a.all_reduce = reinterpret_cast<decltype(a.all_reduce)>(sym("ncclAllReduce"));
    a.comm_destroy = reinterpret_cast<decltype(a.comm_destroy)>(sym("ncclCommDestroy"));
    a.error_string = reinterpret_cast<decltype(a.error_string)>(sym("ncclGetErrorString"));
    if (!a.get_unique_id || !a.comm_init_rank || !a.all_reduce || !a.comm_destroy ||
        !a.error_string) {
      a.error = "libnccl.so.2 lacks an NCCL 2 symbol";
    }
    return a;  // the library stays open for the life of the process
  }();
  return api;
}

Status NcclError(ncclResult_t r, std::string_view what) {
  return Internal(std::string(what) + ": " + Nccl().error_string(r));
}

class NcclCollective final : public Collective {
 public:
  NcclCollective(ncclComm_t comm, int32_t rank, int32_t size)
      : comm_(comm), rank_(rank), size_(size) {}
  ~NcclCollective() override { Nccl().comm_destroy(comm_); }

  int32_t rank() const override { return rank_; }
  int32_t size() const override { return size_; }

  Status AllReduceSum(Device& device, Buffer& buf, size_t elements) override {
    auto* stream = static_cast<cudaStream_t>(CudaDeviceStream(device));
    if (stream == nullptr) return InvalidArgument("NCCL all-reduce on a device that is not CUDA");
    if (elements > buf.elements()) {
      return InvalidArgument("all-reduce of " + std::to_string(elements) + " elements over a " +
                             std::to_string(buf.elements()) + "-element buffer");
    }
    ncclDataType_t type;
    switch (buf.dtype()) {
      case DType::kBF16:
        type = ncclBfloat16;
        break;
      case DType::kF16:
        type = ncclFloat16;
        break;
      case DType::kF32:
        type = ncclFloat32;
        break;
      default:
        return Unsupported("NCCL all-reduce of a non-float buffer");
    }
    void* p = cuda::Ptr<void>(buf);
    if (ncclResult_t r = Nccl().all_reduce(p, p, elements, type, ncclSum, comm_, stream);
        r != ncclSuccess) {
      return NcclError(r, "ncclAllReduce");
    }
    return Status::Ok();
  }

 private:
  ncclComm_t comm_;
  int32_t rank_, size_;
};

}  // namespace

Result<NcclUniqueId> NewNcclUniqueId() {
  static_assert(sizeof(ncclUniqueId) == sizeof(NcclUniqueId));
  if (!Nccl().error.empty()) return Unavailable(Nccl().error);
  ncclUniqueId id;
  if (ncclResult_t r = Nccl().get_unique_id(&id); r != ncclSuccess) {
    return NcclError(r, "ncclGetUniqueId");
  }
  NcclUniqueId out;
  std::memcpy(out.data(), &id, sizeof(id));
  return out;
}

Result<std::unique_ptr<Collective>> CreateNcclCollective(const NcclUniqueId& id, int32_t rank,
                                                         int32_t size, int gpu) {
  if (size < 1 || rank < 0 || rank >= size) {
    return InvalidArgument("NCCL rank " + std::to_string(rank) + " of " + std::to_string(size) +
                           " is out of range");
  }
  if (!Nccl().error.empty()) return Unavailable(Nccl().error);
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/1);  // never NVLink multicast (see above)
  if (cudaError_t e = cudaSetDevice(gpu); e != cudaSuccess) {
    return cuda::CudaError(e, "cudaSetDevice for NCCL");
  }
  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), sizeof(nid));
  ncclComm_t comm = nullptr;
  if (ncclResult_t r = Nccl().comm_init_rank(&comm, size, nid, rank); r != ncclSuccess) {
    return NcclError(r, "ncclCommInitRank");
  }
  return std::unique_ptr<Collective>(new NcclCollective(comm, rank, size));
}

#else  // !SLUICE_HAVE_NCCL

Result<NcclUniqueId> NewNcclUniqueId() {
  return Unsupported("this build has no NCCL (tensor parallelism on GPUs needs it)");
}

Result<std::unique_ptr<Collective>> CreateNcclCollective(const NcclUniqueId&, int32_t, int32_t,
                                                         int) {
  return Unsupported("this build has no NCCL (tensor parallelism on GPUs needs it)");
}

#endif

}  // namespace sluice::llm

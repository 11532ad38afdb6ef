#pragma once
// Where the instances of a model's instance group run, by Triton's rules:
// - KIND_GPU: one set of `count` instances on each GPU of `gpus`; on every visible GPU when
//   `gpus` is empty (GPU 0 when the server sees none, so that the backend, not the server,
//   says why it cannot run there).
// - KIND_AUTO: as KIND_GPU when the machine has a GPU, else on the CPU.
// - KIND_CPU, KIND_MODEL: on the CPU.

#include <vector>

#include "model_config.pb.h"

namespace sluice::core {

struct InstancePlacement {
  bool gpu = false;
  int gpu_id = -1;  // with gpu
  bool operator==(const InstancePlacement&) const = default;
};

// One entry per instance, in order. `visible_gpus`: GPUs the server sees (NVML), 0 on a
// CPU machine.
std::vector<InstancePlacement> PlaceInstances(const inference::ModelInstanceGroup& group,
                                              int visible_gpus);

}  // namespace sluice::core

#pragma once
// What one model instance is: the model it serves, where its files are and where it runs.
// Built once by the server (ModelVersion::LaunchSpecs), sent to the instance's stub in the Init
// message (ipc/instance_spec_codec.h encodes it) and handed as is to the backend's Initialize
// (backends/backend.h). Constant for the instance's lifetime.
//
// Header only: its users link sluice_proto for the config.

#include <cstdint>
#include <string>

#include "model_config.pb.h"

namespace sluice {

// Where an instance runs: Triton's instance_group kind (KIND_CPU, KIND_GPU).
enum class InstanceKind { kCpu, kGpu };

struct InstanceSpec {
  std::string model_name;
  int64_t model_version = 0;
  inference::ModelConfig config;  // the effective config (the backend is named in it)
  std::string model_dir;          // the model's folder (<repo>/<model>)
  std::string version_dir;        // <repo>/<model>/<version>
  int instance_index = 0;         // 0.. across the model's instance groups
  InstanceKind kind = InstanceKind::kCpu;
  int gpu_id = -1;           // with kGpu
  int cpu_threads = 0;       // 0: the hardware's count
  bool verbose_log = false;  // the stub logs at debug level
};

}  // namespace sluice

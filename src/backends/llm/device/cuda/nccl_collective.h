#pragma once

// Tensor parallelism's all-reduce on GPUs (issue 7): one NCCL communicator per rank, each
// rank a process with its own GPU. Rank 0 makes the group's unique id and the others get it
// from the server, which starts the ranks. The all-reduce is issued on the CUDA device's
// stream, so it orders with the step's kernels and is recorded into its decode graphs.
// NVLink multicast (NVLS) is switched off in the process before the communicator exists:
// a program using it can take a host's GPUs out of service.
//
// Built when the CUDA toolkit has NCCL (SLUICE_HAVE_NCCL); the functions then exist, and
// say Unsupported otherwise.

#include <array>
#include <memory>

#include "backends/llm/device/collective.h"
#include "common/status.h"

namespace sluice::llm {

using NcclUniqueId = std::array<char, 128>;  // ncclUniqueId's bytes

// A new group id (rank 0 calls this once per model load).
Result<NcclUniqueId> NewNcclUniqueId();

// Joins the group `id` as `rank` of `size` on CUDA device `gpu` (blocks until every rank
// has joined). The communicator is destroyed with the result.
Result<std::unique_ptr<Collective>> CreateNcclCollective(const NcclUniqueId& id, int32_t rank,
                                                         int32_t size, int gpu);

}  // namespace sluice::llm

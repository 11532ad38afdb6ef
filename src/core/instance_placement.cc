#include "core/instance_placement.h"

#include <algorithm>

namespace sluice::core {

std::vector<InstancePlacement> PlaceInstances(const inference::ModelInstanceGroup& group,
                                              int visible_gpus) {
  using Group = inference::ModelInstanceGroup;
  const int count = std::max(1, group.count());
  const bool gpu = group.kind() == Group::KIND_GPU ||
                   (group.kind() == Group::KIND_AUTO && visible_gpus > 0);
  std::vector<InstancePlacement> out;
  if (!gpu) {
    out.assign(static_cast<size_t>(count), InstancePlacement{});
    return out;
  }
  std::vector<int> gpus(group.gpus().begin(), group.gpus().end());
  if (gpus.empty()) {
    for (int i = 0; i < std::max(1, visible_gpus); ++i) gpus.push_back(i);
  }
  for (int id : gpus) {
    for (int i = 0; i < count; ++i) out.push_back({.gpu = true, .gpu_id = id});
  }
  return out;
}

}  // namespace sluice::core

// Triton's placement of instance groups (core/instance_placement.h).

#include "core/instance_placement.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

using Group = inference::ModelInstanceGroup;
using P = InstancePlacement;

Group MakeGroup(Group::Kind kind, int count, std::vector<int> gpus = {}) {
  Group g;
  g.set_kind(kind);
  g.set_count(count);
  for (int id : gpus) g.add_gpus(id);
  return g;
}

TEST(InstancePlacementTest, CpuAndModelKindsStayOnTheCpu) {
  const std::vector<P> two_cpu = {P{}, P{}};
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_CPU, 2), 4), two_cpu);
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_MODEL, 2), 4), two_cpu);
}

TEST(InstancePlacementTest, AutoIsGpuOnlyWhenTheMachineHasOne) {
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_AUTO, 1), 0), std::vector<P>{P{}});
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_AUTO, 1), 2),
            (std::vector<P>{{true, 0}, {true, 1}}));
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_AUTO, 1, {1}), 2), (std::vector<P>{P{true, 1}}));
}

TEST(InstancePlacementTest, GpuRunsCountInstancesOnEachListedOrVisibleGpu) {
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_GPU, 2, {1, 3}), 4),
            (std::vector<P>{{true, 1}, {true, 1}, {true, 3}, {true, 3}}));
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_GPU, 1), 2),
            (std::vector<P>{{true, 0}, {true, 1}}));
  // No GPU visible: still GPU 0, so that the backend explains why it cannot run.
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_GPU, 1), 0), (std::vector<P>{P{true, 0}}));
  // count 0 means 1, as Triton.
  EXPECT_EQ(PlaceInstances(MakeGroup(Group::KIND_GPU, 0, {2}), 4), (std::vector<P>{P{true, 2}}));
}

}  // namespace
}  // namespace sluice::core

#pragma once
// The config parameters that make an instance misbehave on purpose (stub/test_behavior.h
// implements them), so that the lifecycle guarantees can be tested. A load request from
// the network may not set them unless the server runs with --allow-test-behaviors: they
// hang unloads, crash stubs and hold GPU memory by design.

#include <array>
#include <string_view>

namespace sluice {

inline constexpr std::array<std::string_view, 4> kTestBehaviorParameters = {
    "ignore_shutdown", "hang_in_finalize", "crash_after_responses", "gpu_hold_mib"};

}  // namespace sluice

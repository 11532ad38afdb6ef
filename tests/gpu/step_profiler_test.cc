// StepProfiler (SLUICE_CUDA_PROFILE=1): eager steps time each op, graph steps only the whole,
// steps are grouped by kind, and the interval to the next step's start is charged to the
// step before it.

#include "backends/llm/device/cuda/step_profiler.h"

#include <gtest/gtest.h>

#include "gpu/gpu_test_util.h"

namespace sluice::llm::cuda {
namespace {

using testing::DeviceArray;

TEST(StepProfilerTest, GroupsStepsByKindAndTimesEagerOps) {
  SLUICE_REQUIRE_GPU();
  cudaStream_t stream = nullptr;
  SLUICE_CUDA_OK(cudaStreamCreate(&stream));
  {
    StepProfiler profiler(stream);
    // 256 MiB: each memset (~60 us on an H200) dwarfs the event and launch overheads, which
    // a 16 MiB one (~4 us) did not.
    DeviceArray<float> a(size_t{1} << 26);
    auto fill = [&] { cudaMemsetAsync(a.get(), 0, a.size() * sizeof(float), stream); };
    for (int step = 0; step < 3; ++step) {
      profiler.BeginStep(1, /*decode=*/true);
      fill();
      profiler.Op("first");
      fill();
      fill();
      profiler.Op("second");
      cudaStreamSynchronize(stream);
      profiler.EndStep();
    }
    profiler.BeginStep(40, /*decode=*/false);
    fill();
    profiler.MarkGraph();  // as a replayed graph: no per-op events
    cudaStreamSynchronize(stream);
    profiler.EndStep();

    const auto& kinds = profiler.kinds();
    ASSERT_EQ(kinds.size(), 2u);
    const auto& decode = kinds.at("decode 1 row, eager");
    EXPECT_EQ(decode.steps, 3);
    EXPECT_EQ(decode.eager_steps, 3);
    EXPECT_EQ(decode.timed_gaps, 3);  // each was followed by another step's start
    ASSERT_EQ(decode.ops.size(), 2u);
    const auto& first = decode.ops.at("first");
    const auto& second = decode.ops.at("second");
    EXPECT_EQ(first.count, 3);
    EXPECT_EQ(second.count, 3);
    EXPECT_GT(first.ms, 0);
    EXPECT_GT(second.ms, first.ms);  // two memsets against one
    EXPECT_LE(first.ms + second.ms, decode.gpu_ms * 1.0001);
    EXPECT_GE(decode.interval_ms, decode.interval_gpu_ms * 0.99);

    const auto& graph = kinds.at("prefill/mixed <= 64 rows, graph");  // 40 rows
    EXPECT_EQ(graph.steps, 1);
    EXPECT_EQ(graph.eager_steps, 0);
    EXPECT_EQ(graph.timed_gaps, 0);  // no step followed it
    EXPECT_TRUE(graph.ops.empty());
    EXPECT_GT(graph.gpu_ms, 0);
  }
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace sluice::llm::cuda

// RowWorkers (engine/row_workers.h): every index of a job runs exactly once, on the workers
// and the waiting thread, Wait returns only after the last call has returned, jobs follow
// each other without a worker running a stale one, and the destructor joins the workers.
// The llm_engine_test binary runs under TSan (scripts/test_sanitizers.sh).

#include "backends/llm/engine/row_workers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace sluice::llm {
namespace {

TEST(RowWorkersTest, RunsEveryIndexOnceAndWaitsForTheLast) {
  RowWorkers workers(4);
  for (size_t n : {1u, 3u, 16u, 129u}) {
    std::vector<std::atomic<int>> runs(n);
    workers.Start(n, [&runs](size_t i) {
      if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a slow row
      runs[i].fetch_add(1);
    });
    workers.Wait();
    for (size_t i = 0; i < n; ++i) EXPECT_EQ(runs[i].load(), 1) << "index " << i << " of " << n;
  }
}

TEST(RowWorkersTest, SpreadsOverSeveralThreads) {
  RowWorkers workers(3);
  std::mutex mu;
  std::set<std::thread::id> ids;
  workers.Start(64, [&](size_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  workers.Wait();
  EXPECT_GE(ids.size(), 2u);  // 128 ms of sleeping rows: the workers take some
}

TEST(RowWorkersTest, TheWaitingThreadRunsWhatIsLeft) {
  RowWorkers workers(1);
  std::atomic<int> on_caller{0};
  const std::thread::id caller = std::this_thread::get_id();
  workers.Start(200, [&](size_t) {
    if (std::this_thread::get_id() == caller) on_caller.fetch_add(1);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  });
  workers.Wait();
  EXPECT_GT(on_caller.load(), 0);
}

TEST(RowWorkersTest, AFewCallsRunOnTheWaitingThread) {
  RowWorkers workers(4);
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0};
  workers.Start(RowWorkers::kWakeAt - 1, [&](size_t) {
    if (std::this_thread::get_id() != caller) elsewhere.fetch_add(1);
  });
  workers.Wait();
  EXPECT_EQ(elsewhere.load(), 0);
}

TEST(RowWorkersTest, ManyShortJobsInARowAndNoJobAtAll) {
  RowWorkers workers(4);
  workers.Wait();  // no job yet
  workers.Start(0, [](size_t) { FAIL() << "an empty job ran"; });
  workers.Wait();
  std::atomic<size_t> total{0};
  for (int job = 0; job < 2000; ++job) {
    const size_t n = 1 + job % 37;
    std::vector<int> slots(n, 0);  // each written by exactly one call of this job only
    workers.Start(n, [&slots, &total](size_t i) {
      ++slots[i];
      total.fetch_add(1);
    });
    workers.Wait();
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(slots[i], 1) << "job " << job << " index " << i;
  }
  size_t expected = 0;
  for (int job = 0; job < 2000; ++job) expected += 1 + job % 37;
  EXPECT_EQ(total.load(), expected);
}

TEST(RowWorkersTest, DestroyedWithoutEverStartingOrAfterJobs) {
  { RowWorkers idle(4); }
  std::atomic<int> runs{0};
  {
    RowWorkers used(2);
    used.Start(10, [&runs](size_t) { runs.fetch_add(1); });
    used.Wait();
  }
  EXPECT_EQ(runs.load(), 10);
}

}  // namespace
}  // namespace sluice::llm

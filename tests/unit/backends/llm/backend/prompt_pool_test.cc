// PromptPool (backends/llm/backend/prompt_pool.h): jobs prepared in parallel are admitted in
// arrival order; a queued job can be withdrawn; Stop drops the queued jobs and lets the
// running ones finish.

#include "backends/llm/backend/prompt_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::llm {
namespace {

using namespace std::chrono_literals;

// What the admits saw, in the order they ran.
class Log {
 public:
  void Add(uint64_t id) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ids_.push_back(id);
    cv_.NotifyAll();
  }
  bool WaitFor(size_t n) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return cv_.WaitFor(mu_, 10s, [&]() SLUICE_REQUIRES(mu_) { return ids_.size() >= n; });
  }
  std::vector<uint64_t> ids() SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return ids_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::vector<uint64_t> ids_ SLUICE_GUARDED_BY(mu_);
};

// A latch the test opens: holds a job in its prepare.
class Gate {
 public:
  void Open() SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    open_ = true;
    cv_.NotifyAll();
  }
  void Pass() SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    cv_.Wait(mu_, [&]() SLUICE_REQUIRES(mu_) { return open_; });
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool open_ SLUICE_GUARDED_BY(mu_) = false;
};

PromptPool::Prepare Job(uint64_t id, Log& log, Gate* gate = nullptr,
                        std::atomic<int>* started = nullptr) {
  return [id, &log, gate, started]() -> PromptPool::Admit {
    if (started) started->fetch_add(1);
    if (gate) gate->Pass();
    return [id, &log] { log.Add(id); };
  };
}

void WaitStarted(const std::atomic<int>& started, int n) {
  for (int i = 0; i < 1000 && started.load() < n; ++i) std::this_thread::sleep_for(5ms);
  ASSERT_GE(started.load(), n);
}

// Posts job 1, held in its prepare by `gate`, and waits until a worker runs it.
void PostHeldFirstJob(PromptPool& pool, Log& log, Gate& gate) {
  std::atomic<int> started{0};
  ASSERT_TRUE(pool.Post(1, Job(1, log, &gate, &started)));
  WaitStarted(started, 1);
}

TEST(PromptPoolTest, AdmitsInArrivalOrderWhenAnEarlierJobPreparesLonger) {
  auto pool = PromptPool::Create(4);
  EXPECT_EQ(pool->threads(), 4);
  Log log;
  Gate slow;
  PostHeldFirstJob(*pool, log, slow);
  for (uint64_t id = 2; id <= 6; ++id) ASSERT_TRUE(pool->Post(id, Job(id, log)));
  // Jobs 2..4 are prepared meanwhile, but none is admitted before job 1.
  std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(log.ids().empty());
  slow.Open();
  ASSERT_TRUE(log.WaitFor(6));
  EXPECT_EQ(log.ids(), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
}

TEST(PromptPoolTest, AWithdrawnJobNeverRunsAndDoesNotHoldUpTheOthers) {
  auto pool = PromptPool::Create(1);
  Log log;
  Gate hold;
  PostHeldFirstJob(*pool, log, hold);
  for (uint64_t id = 2; id <= 4; ++id) ASSERT_TRUE(pool->Post(id, Job(id, log)));
  EXPECT_FALSE(pool->Withdraw(1));  // running
  EXPECT_TRUE(pool->Withdraw(3));
  EXPECT_FALSE(pool->Withdraw(3));
  EXPECT_FALSE(pool->Withdraw(99));
  hold.Open();
  ASSERT_TRUE(log.WaitFor(3));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(log.ids(), (std::vector<uint64_t>{1, 2, 4}));
}

TEST(PromptPoolTest, AJobWithdrawnBehindRunningOnesIsSkippedInTheOrder) {
  auto pool = PromptPool::Create(2);
  Log log;
  Gate hold_a, hold_b;
  std::atomic<int> started{0};
  // Both workers busy: 1 holds the turn, 2 is prepared and waits for it; 3 and 4 queue.
  ASSERT_TRUE(pool->Post(1, Job(1, log, &hold_a, &started)));
  ASSERT_TRUE(pool->Post(2, Job(2, log, &hold_b, &started)));
  WaitStarted(started, 2);
  ASSERT_TRUE(pool->Post(3, Job(3, log)));
  ASSERT_TRUE(pool->Post(4, Job(4, log)));
  EXPECT_TRUE(pool->Withdraw(3));
  hold_b.Open();
  hold_a.Open();
  ASSERT_TRUE(log.WaitFor(3));
  EXPECT_EQ(log.ids(), (std::vector<uint64_t>{1, 2, 4}));
}

TEST(PromptPoolTest, StopDropsQueuedJobsAndFinishesRunningOnes) {
  auto pool = PromptPool::Create(1);
  Log log;
  Gate hold;
  PostHeldFirstJob(*pool, log, hold);
  ASSERT_TRUE(pool->Post(2, Job(2, log)));
  ASSERT_TRUE(pool->Post(3, Job(3, log)));
  std::thread opener([&] {
    std::this_thread::sleep_for(50ms);
    hold.Open();
  });
  EXPECT_EQ(pool->Stop(), (std::vector<uint64_t>{2, 3}));
  opener.join();
  EXPECT_EQ(log.ids(), (std::vector<uint64_t>{1}));
  EXPECT_FALSE(pool->Post(4, Job(4, log)));
  EXPECT_TRUE(pool->Stop().empty());
}

TEST(PromptPoolTest, ManyJobsFromSeveralThreadsAreEachAdmittedOnce) {
  auto pool = PromptPool::Create(3);
  Log log;
  std::vector<std::thread> posters;
  for (uint64_t t = 0; t < 4; ++t) {
    posters.emplace_back([&, t] {
      for (uint64_t i = 0; i < 250; ++i)
        ASSERT_TRUE(pool->Post(t * 1000 + i, Job(t * 1000 + i, log)));
    });
  }
  for (auto& p : posters) p.join();
  ASSERT_TRUE(log.WaitFor(1000));
  std::vector<uint64_t> ids = log.ids();
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(std::unique(ids.begin(), ids.end()), ids.end());
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace sluice::llm

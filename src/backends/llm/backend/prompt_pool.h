#pragma once
// A few threads of the llm backend's own for the work a request needs before the engine takes
// it (parsing, chat-template rendering, tokenization), so that none of it runs on the stub's IPC
// thread, the one that answers heartbeats and cancels (issue 21): a burst of long prompts
// cannot delay either.
//
// A job has two parts. `prepare` runs on any worker, in parallel with other jobs' prepare; the
// `admit` it returns runs once every earlier job was admitted or withdrawn, and before any later
// job's admit: the engine sees requests in the order they arrived, whatever the pool's size.
// A job not yet started can be withdrawn (a cancel that comes while it waits).
//
// Thread-safety: every method may be called from any thread, but not from inside a job.
// prepare and admit run without the pool's lock held, so they may take the caller's locks.
//
//   auto pool = PromptPool::Create(2);
//   pool->Post(id, [] { Tokens t = Tokenize(...); return [t] { engine.Add(t); }; });

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"

namespace sluice::llm {

class PromptPool {
 public:
  using Admit = std::function<void()>;
  using Prepare = std::function<Admit()>;

  // Starts `threads` workers (at least 1).
  static std::unique_ptr<PromptPool> Create(int threads);
  // Stop(), and drops what it returns.
  ~PromptPool();
  PromptPool(const PromptPool&) = delete;
  PromptPool& operator=(const PromptPool&) = delete;

  // Queues a job under `id` (unique among the jobs not yet started). False after Stop: the job
  // is dropped unrun.
  bool Post(uint64_t id, Prepare prepare) SLUICE_EXCLUDES(mu_);
  // Takes back the job of `id` if no worker has started it: true if taken (it never runs).
  bool Withdraw(uint64_t id) SLUICE_EXCLUDES(mu_);
  // Drops the jobs not yet started and returns their ids; the running ones finish (their admit
  // included); then joins the workers. Idempotent (a second call returns nothing).
  std::vector<uint64_t> Stop() SLUICE_EXCLUDES(mu_);

  // Number of workers.
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  struct Job {
    uint64_t ticket = 0;  // arrival order
    uint64_t id = 0;
    Prepare prepare;
  };

  PromptPool() = default;
  void Work() SLUICE_EXCLUDES(mu_);
  // Marks `ticket` as done (admitted or withdrawn) and moves the admission turn past every
  // done ticket.
  void Done(uint64_t ticket) SLUICE_REQUIRES(mu_);

  Mutex mu_;
  CondVar work_cv_;  // a job queued, or stopping
  CondVar turn_cv_;  // next_admit_ moved
  std::deque<Job> queue_ SLUICE_GUARDED_BY(mu_);
  uint64_t next_ticket_ SLUICE_GUARDED_BY(mu_) = 0;
  uint64_t next_admit_ SLUICE_GUARDED_BY(mu_) = 0;  // the ticket whose admit runs next
  std::set<uint64_t> done_ SLUICE_GUARDED_BY(mu_);  // done tickets past next_admit_
  bool stopping_ SLUICE_GUARDED_BY(mu_) = false;

  Mutex join_mu_;                     // serialises Stop callers around the join
  std::vector<std::thread> workers_;  // set by Create, joined by Stop
};

}  // namespace sluice::llm

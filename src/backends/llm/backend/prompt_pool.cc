#include "backends/llm/backend/prompt_pool.h"

#include <algorithm>

namespace sluice::llm {

std::unique_ptr<PromptPool> PromptPool::Create(int threads) {
  std::unique_ptr<PromptPool> pool(new PromptPool());
  for (int i = 0; i < std::max(threads, 1); ++i)
    pool->workers_.emplace_back([p = pool.get()] { p->Work(); });
  return pool;
}

PromptPool::~PromptPool() {
  (void)Stop();
}

bool PromptPool::Post(uint64_t id, Prepare prepare) {
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    queue_.push_back(Job{next_ticket_++, id, std::move(prepare)});
  }
  work_cv_.NotifyOne();
  return true;
}

bool PromptPool::Withdraw(uint64_t id) {
  MutexLock lock(mu_);
  auto it = std::find_if(queue_.begin(), queue_.end(), [id](const Job& j) { return j.id == id; });
  if (it == queue_.end()) return false;
  const uint64_t ticket = it->ticket;
  queue_.erase(it);
  Done(ticket);
  return true;
}

std::vector<uint64_t> PromptPool::Stop() {
  MutexLock join(join_mu_);
  std::vector<uint64_t> dropped;
  {
    MutexLock lock(mu_);
    stopping_ = true;
    for (const Job& job : queue_) {
      dropped.push_back(job.id);
      Done(job.ticket);
    }
    queue_.clear();
  }
  work_cv_.NotifyAll();
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  return dropped;
}

void PromptPool::Done(uint64_t ticket) {
  done_.insert(ticket);
  while (!done_.empty() && *done_.begin() == next_admit_) {
    done_.erase(done_.begin());
    ++next_admit_;
  }
  turn_cv_.NotifyAll();
}

void PromptPool::Work() {
  for (;;) {
    Job job;
    {
      MutexLock lock(mu_);
      work_cv_.Wait(mu_, [this]() SLUICE_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    Admit admit = job.prepare();
    {
      // Workers take jobs in ticket order, so every earlier ticket is done or running: the
      // wait ends.
      MutexLock lock(mu_);
      turn_cv_.Wait(mu_, [this, &job]() SLUICE_REQUIRES(mu_) { return next_admit_ == job.ticket; });
    }
    if (admit) admit();
    MutexLock lock(mu_);
    Done(job.ticket);
  }
}

}  // namespace sluice::llm

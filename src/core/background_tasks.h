#pragma once
// Threads for work that must not block its caller (a reload's old version draining, an
// unload with wait=false, stopping the other instances of a crashed version). Every thread
// is joined: finished ones on the next Run, the rest in JoinAll / the destructor.

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <thread>

#include "common/thread_annotations.h"

namespace sluice::core {

class BackgroundTasks {
 public:
  BackgroundTasks() = default;
  BackgroundTasks(const BackgroundTasks&) = delete;
  BackgroundTasks& operator=(const BackgroundTasks&) = delete;
  ~BackgroundTasks() { JoinAll(); }

  void Run(std::function<void()> fn) SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    ReapLocked();
    auto task = std::make_shared<Task>();
    task->thread = std::thread([task, fn = std::move(fn)]() mutable {
      {
        // The function (and whatever it captured, possibly the last reference to an
        // object whose destructor runs tasks too) is gone before the task counts as done.
        std::function<void()> run = std::move(fn);
        run();
      }
      task->done.store(true);
    });
    tasks_.push_back(task);
  }

  void JoinAll() SLUICE_EXCLUDES(mu_) {
    std::list<std::shared_ptr<Task>> tasks;
    {
      MutexLock lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks)
      if (t->thread.joinable()) t->thread.join();
  }

 private:
  struct Task {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void ReapLocked() SLUICE_REQUIRES(mu_) {
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if ((*it)->done.load() && (*it)->thread.get_id() != std::this_thread::get_id()) {
        (*it)->thread.join();
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
  }
  Mutex mu_;
  std::list<std::shared_ptr<Task>> tasks_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::core

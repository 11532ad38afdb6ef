#pragma once
// Live progress on stderr while a benchmark runs: a redrawn bar when stderr is a terminal,
// a plain line every few seconds otherwise (logs stay readable). Owns one thread, joined
// by Stop or the destructor.

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "tools/bench/runner.h"

namespace sluice::bench {

// One progress line; `total` 0 means a duration run (`elapsed_s` of `duration_s`).
std::string FormatProgress(const RunProgress& p, size_t total, double elapsed_s,
                           double duration_s, bool bar);

class ProgressDisplay {
 public:
  ProgressDisplay(const RunProgress* progress, size_t total, double duration_s, FILE* out,
                  bool tty);
  ~ProgressDisplay();
  void Stop();

 private:
  void Loop();

  const RunProgress* progress_;
  size_t total_;
  double duration_s_;
  FILE* out_;
  bool tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::bench

#include "tools/bench/progress.h"

#include <algorithm>
#include <chrono>

namespace sluice::bench {

std::string FormatProgress(const RunProgress& p, size_t total, double elapsed_s,
                           double duration_s, bool bar) {
  size_t done = p.done.load();
  double frac = total > 0 ? static_cast<double>(done) / static_cast<double>(total)
                          : (duration_s > 0 ? elapsed_s / duration_s : 0);
  frac = std::clamp(frac, 0.0, 1.0);
  char buf[256];
  double rps = elapsed_s > 0 ? static_cast<double>(done) / elapsed_s : 0;
  double tps = elapsed_s > 0 ? static_cast<double>(p.output_tokens.load()) / elapsed_s : 0;
  std::string count = total > 0 ? std::to_string(done) + "/" + std::to_string(total)
                                : std::to_string(done);
  std::string head;
  if (p.warming_up.load()) {
    head = "warm-up ";
  } else if (bar) {
    constexpr int kWidth = 30;
    int filled = static_cast<int>(frac * kWidth);
    head = "[" + std::string(filled, '#') + std::string(kWidth - filled, ' ') + "] ";
  }
  snprintf(buf, sizeof buf, "%s%3.0f%% %s req, %zu failed, %.1fs, %.2f req/s, %.1f tok/s",
           head.c_str(), frac * 100, count.c_str(), p.failed.load(), elapsed_s, rps, tps);
  return buf;
}

ProgressDisplay::ProgressDisplay(const RunProgress* progress, size_t total, double duration_s,
                                 FILE* out, bool tty)
    : progress_(progress), total_(total), duration_s_(duration_s), out_(out), tty_(tty) {
  thread_ = std::thread([this] { Loop(); });
}

ProgressDisplay::~ProgressDisplay() { Stop(); }

void ProgressDisplay::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressDisplay::Loop() {
  const auto start = std::chrono::steady_clock::now();
  const auto period = tty_ ? std::chrono::milliseconds(200) : std::chrono::milliseconds(5000);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    bool stopping = cv_.wait_for(lock, period, [&] { return stop_; });
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string line = FormatProgress(*progress_, total_, elapsed, duration_s_, tty_);
    if (tty_) {
      fprintf(out_, "\r\033[K%s%s", line.c_str(), stopping ? "\n" : "");
    } else {
      fprintf(out_, "progress: %s\n", line.c_str());
    }
    fflush(out_);
    if (stopping) return;
  }
}

}  // namespace sluice::bench

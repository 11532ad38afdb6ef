#include "backends/llm/engine/stop_string_matcher.h"

#include <algorithm>

namespace sluice::llm {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops, bool include_stop_str_in_output)
    : stops_(std::move(stops)), include_stop_(include_stop_str_in_output) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

StopStringMatcher::Delta StopStringMatcher::Feed(std::string_view delta, bool allow_stop) {
  Delta out;
  if (stopped_) return out;
  pending_.append(delta);
  if (stops_.empty()) {
    out.text.swap(pending_);
    return out;
  }
  // Every byte before pending_ was checked, and no stop string can start there (the tail
  // that could was held back), so searching pending_ alone is enough.
  size_t best_pos = std::string::npos;
  const std::string* best = nullptr;
  for (const std::string& s : stops_) {
    if (!allow_stop) break;
    const size_t pos = pending_.find(s);
    if (pos != std::string::npos &&
        (pos < best_pos || (pos == best_pos && s.size() > best->size()))) {
      best_pos = pos;
      best = &s;
    }
  }
  if (best != nullptr) {
    stopped_ = true;
    out.stopped = true;
    out.matched = *best;
    out.text = pending_.substr(0, include_stop_ ? best_pos + best->size() : best_pos);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) {
    const size_t max_len = std::min(s.size() - 1, pending_.size());
    for (size_t len = max_len; len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) ==
          std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  out.text = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringMatcher::Flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  pending_.clear();
  return out;
}

}  // namespace sluice::llm

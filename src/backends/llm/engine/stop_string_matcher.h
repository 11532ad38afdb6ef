#pragma once
// Stop strings over streamed text. Fed the detokenized text deltas of one sequence, it
// returns only the text that is safe to emit: any tail that could still grow into a stop
// string is held back, so a stop string is never half-emitted. When a stop string appears,
// the text is cut before it (or after it with include_stop_str_in_output) and the match
// is reported; the earliest match wins. Flush() releases the held-back tail when the
// sequence ends for another reason.

#include <string>
#include <string_view>
#include <vector>

namespace sluice::llm {

class StopStringMatcher {
 public:
  struct Delta {
    std::string text;     // safe to emit now
    bool stopped = false;
    std::string matched;  // the stop string that matched, when stopped
  };

  StopStringMatcher(std::vector<std::string> stops, bool include_stop_str_in_output);

  // After a stop, further calls return nothing. With allow_stop false (before min_tokens)
  // no stop is matched, but a tail that may grow into one is still held back.
  Delta Feed(std::string_view delta, bool allow_stop = true);
  std::string Flush();

  bool stopped() const { return stopped_; }
  size_t held_back_bytes() const { return pending_.size(); }

 private:
  std::vector<std::string> stops_;
  bool include_stop_;
  std::string pending_;  // text not yet emitted
  bool stopped_ = false;
};

}  // namespace sluice::llm

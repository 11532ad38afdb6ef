#pragma once
// Incremental parser for Server-Sent Events (the WHATWG event-stream format): bytes arrive in
// arbitrary pieces (an event may be split across reads, a CRLF across two reads), complete
// events come out. Bounded: an event larger than `max_event_bytes` is an error.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::client {

struct SseEvent {
  std::string event;  // "event:" field; empty means the default "message"
  std::string data;   // "data:" lines joined with '\n'
  std::string id;
};

class SseParser {
 public:
  explicit SseParser(size_t max_event_bytes = 16u << 20) : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes`; appends each event completed by them (a blank line ends an event that
  // has data) to `out`. After an error the parser must not be fed again.
  Status Feed(std::string_view bytes, std::vector<SseEvent>* out);

  // True when bytes of an unfinished event are pending (a stream that ends here was cut).
  bool HasPartialEvent() const { return !line_.empty() || has_fields_; }

 private:
  void ProcessLine(std::vector<SseEvent>* out);

  size_t max_event_bytes_;
  std::string line_;         // the current line, without its terminator
  bool last_was_cr_ = false; // a '\r' ended the previous line: skip a following '\n'
  bool has_fields_ = false;  // a field line of the current event was seen
  bool has_data_ = false;
  SseEvent pending_;
  size_t pending_bytes_ = 0;
};


}  // namespace sluice::client

#include "tools/client/sse_parser.h"

namespace sluice::client {

Status SseParser::Feed(std::string_view bytes, std::vector<SseEvent>* out) {
  for (char c : bytes) {
    if (last_was_cr_) {
      last_was_cr_ = false;
      if (c == '\n') continue;  // the '\n' of a CRLF split or not across reads
    }
    if (c == '\r' || c == '\n') {
      last_was_cr_ = (c == '\r');
      ProcessLine(out);
      continue;
    }
    line_.push_back(c);
    if (line_.size() + pending_bytes_ > max_event_bytes_) {
      return ResourceExhausted("SSE event exceeds " + std::to_string(max_event_bytes_) +
                               " bytes");
    }
  }
  return Status::Ok();
}

void SseParser::ProcessLine(std::vector<SseEvent>* out) {
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) out->push_back(std::move(pending_));
    pending_ = SseEvent();
    pending_bytes_ = 0;
    has_fields_ = false;
    has_data_ = false;
    return;
  }
  has_fields_ = true;
  std::string_view line = line_;
  if (line.front() == ':') {  // comment
    line_.clear();
    return;
  }
  std::string_view field = line;
  std::string_view value;
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) pending_.data.push_back('\n');
    pending_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    pending_.event = std::string(value);
  } else if (field == "id") {
    pending_.id = std::string(value);
  }  // "retry" and unknown fields are ignored, as the standard says
  pending_bytes_ += line_.size();
  line_.clear();
}

}  // namespace sluice::client

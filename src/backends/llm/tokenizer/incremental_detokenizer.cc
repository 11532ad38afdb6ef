#include "backends/llm/tokenizer/incremental_detokenizer.h"

#include <span>

#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm {
namespace {
// Keep the window short: a held-back character spans at most 3 bytes, so a few ids.
constexpr size_t kMaxWindowIds = 8;
}  // namespace

std::string IncrementalDetokenizer::DecodeWindow() const {
  return tokenizer_.DecodeRaw(std::span<const int32_t>(ids_).subspan(window_start_),
                              skip_special_tokens_);
}

void IncrementalDetokenizer::Seed(const std::vector<int32_t>& prompt_ids) {
  ids_ = prompt_ids;
  window_start_ = 0;
  emitted_bytes_ = 0;
  if (ids_.empty()) return;
  // Restart decoding a few ids back (enough to hold an incomplete character), at an id
  // that decodes to something (so the first-token rules of the decoder are settled).
  size_t start = ids_.size();
  size_t nonempty = 0;
  while (start > 0 && nonempty < 4) {
    --start;
    if (!tokenizer_.DecodeRaw(std::span<const int32_t>(&ids_[start], 1), skip_special_tokens_)
             .empty())
      ++nonempty;
  }
  window_start_ = start;
  const std::string raw = DecodeWindow();
  std::string scratch;
  emitted_bytes_ = ConsumeCompleteUtf8(raw, &scratch);  // the incomplete tail stays pending
}

std::string IncrementalDetokenizer::Add(int32_t id) {
  ids_.push_back(id);
  const std::string raw = DecodeWindow();
  std::string out;
  if (raw.size() > emitted_bytes_) {
    emitted_bytes_ += ConsumeCompleteUtf8(std::string_view(raw).substr(emitted_bytes_), &out);
  }
  if (emitted_bytes_ == raw.size()) MaybeMoveWindow();
  return out;
}

void IncrementalDetokenizer::MaybeMoveWindow() {
  if (ids_.size() - window_start_ <= kMaxWindowIds) return;
  // Nothing is pending: restart at the last id that decodes to bytes, whose text has
  // been emitted; everything after it is emitted as well.
  for (size_t i = ids_.size(); i-- > window_start_ + 1;) {
    const std::string one =
        tokenizer_.DecodeRaw(std::span<const int32_t>(&ids_[i], 1), skip_special_tokens_);
    if (one.empty()) continue;
    window_start_ = i;
    emitted_bytes_ = DecodeWindow().size();
    return;
  }
}

std::string IncrementalDetokenizer::Finish() {
  const std::string raw = DecodeWindow();
  std::string out;
  if (raw.size() > emitted_bytes_) out = LossyUtf8(std::string_view(raw).substr(emitted_bytes_));
  emitted_bytes_ = raw.size();
  return out;
}

}  // namespace sluice::llm

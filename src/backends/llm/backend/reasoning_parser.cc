#include "backends/llm/backend/reasoning_parser.h"

#include <algorithm>

namespace sluice::llm {
namespace {

constexpr std::string_view kStartTag = "<think>";
constexpr std::string_view kEndTag = "</think>";

bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// Length of the longest suffix of `text` that is a proper prefix of `tag`: the part that may
// be a tag's beginning, to hold back until the next text decides.
size_t PartialTagSuffix(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

// Python's truthiness of a JSON value, as vLLM's parser reads
// chat_template_kwargs.get("enable_thinking", True).
bool Truthy(const nlohmann::ordered_json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

}  // namespace

ReasoningStream::Delta ReasoningStream::Feed(std::string_view text) {
  Delta out;
  held_.append(text);
  if (state_ == State::kOpening) {
    const size_t lead =
        static_cast<size_t>(std::find_if_not(held_.begin(), held_.end(), IsSpace) - held_.begin());
    const std::string_view rest = std::string_view(held_).substr(lead);
    if (rest.size() < kStartTag.size() && kStartTag.substr(0, rest.size()) == rest)
      return out;  // whitespace and maybe the start of <think>: undecided
    if (rest.substr(0, kStartTag.size()) == kStartTag) held_.erase(0, lead + kStartTag.size());
    state_ = State::kReasoning;
  }
  if (state_ == State::kReasoning) {
    const size_t end = held_.find(kEndTag);
    if (end == std::string::npos) {
      const size_t keep = PartialTagSuffix(held_, kEndTag);
      out.reasoning = held_.substr(0, held_.size() - keep);
      held_.erase(0, held_.size() - keep);
      return out;
    }
    out.reasoning = held_.substr(0, end);
    held_.erase(0, end + kEndTag.size());
    state_ = State::kContent;
  }
  out.content = std::move(held_);
  held_.clear();
  return out;
}

ReasoningStream::Delta ReasoningStream::Finish() {
  Delta out;
  if (state_ == State::kContent) {
    out.content = std::move(held_);
  } else {
    out.reasoning = std::move(held_);
  }
  held_.clear();
  return out;
}

Result<ReasoningParser> ReasoningParser::Create(std::string_view name) {
  if (name == "deepseek_r1") return ReasoningParser(Kind::kDeepSeekR1);
  if (name == "qwen3") return ReasoningParser(Kind::kQwen3);
  return InvalidArgument("reasoning parser '" + std::string(name.substr(0, 64)) +
                         "' is not supported (deepseek_r1, qwen3)");
}

ReasoningStream ReasoningParser::Start(std::string_view prompt,
                                       const nlohmann::ordered_json& template_kwargs) const {
  if (PromptEndsReasoning(prompt)) return ReasoningStream::ContentOnly();
  switch (kind_) {
    case Kind::kDeepSeekR1:
      break;
    case Kind::kQwen3:
      // Qwen3 thinks unless told not to; its parser then takes the whole output as content.
      if (template_kwargs.is_object() && template_kwargs.contains("enable_thinking") &&
          !Truthy(template_kwargs["enable_thinking"]))
        return ReasoningStream::ContentOnly();
      break;
  }
  return ReasoningStream::InReasoning();
}

std::string_view ReasoningParser::end_tag() const {
  return kEndTag;
}

std::string_view ReasoningParser::name() const {
  switch (kind_) {
    case Kind::kDeepSeekR1:
      return "deepseek_r1";
    case Kind::kQwen3:
      return "qwen3";
  }
  return "";
}

bool PromptEndsReasoning(std::string_view prompt) {
  const size_t end = prompt.rfind(kEndTag);
  if (end == std::string_view::npos) return false;
  const size_t start = prompt.rfind(kStartTag);
  return start == std::string_view::npos || start < end;
}

void SplitReasoning(ReasoningStream& stream, llm_contract::LlmOutput& output) {
  ReasoningStream::Delta d = stream.Feed(output.text);
  if (output.finish_reason != llm_contract::FinishReason::kNone) {
    ReasoningStream::Delta rest = stream.Finish();
    d.reasoning += rest.reasoning;
    d.content += rest.content;
  }
  output.text = std::move(d.content);
  output.reasoning = std::move(d.reasoning);
  output.has_reasoning = stream.has_reasoning();
}

}  // namespace sluice::llm

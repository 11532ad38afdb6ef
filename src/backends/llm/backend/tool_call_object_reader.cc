#include "backends/llm/backend/tool_call_object_reader.h"

#include <nlohmann/json.hpp>
#include <utility>

namespace sluice::llm {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// A character of a number, true, false or null.
bool IsScalarChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '+' ||
         c == '-' || c == '.';
}

}  // namespace

ToolCallObjectReader::Step ToolCallObjectReader::Put(char c) {
  switch (state_) {
    case State::kBeforeObject:
      if (IsSpace(c)) return Step::kMore;
      if (c != '{') break;
      state_ = State::kBeforeKey;
      return Step::kMore;
    case State::kBeforeKey:
      if (IsSpace(c)) return Step::kMore;
      if (c == '}') {
        state_ = State::kEnd;
        return Step::kDone;
      }
      if (c != '"') break;
      key_.clear();
      state_ = State::kKey;
      return Step::kMore;
    case State::kKey:
      if (!key_escape_ && c == '"') {
        state_ = State::kColon;
        return Step::kMore;
      }
      key_escape_ = !key_escape_ && c == '\\';
      key_ += c;
      return Step::kMore;
    case State::kColon:
      if (IsSpace(c)) return Step::kMore;
      if (c != ':') break;
      state_ = State::kBeforeValue;
      return Step::kMore;
    case State::kBeforeValue:
      if (IsSpace(c)) return Step::kMore;
      return BeginValue(c);
    case State::kValue:
      return PutValue(c);
    case State::kAfterValue:
      if (IsSpace(c)) return Step::kMore;
      if (c == ',') {
        state_ = State::kBeforeKey;
        return Step::kMore;
      }
      if (c != '}') break;
      state_ = State::kEnd;
      return Step::kDone;
    case State::kEnd:
      break;
  }
  state_ = State::kEnd;
  return Step::kRejected;
}

ToolCallObjectReader::Step ToolCallObjectReader::BeginValue(char c) {
  if (c != '{' && c != '[' && c != '"' && !IsScalarChar(c)) {
    state_ = State::kEnd;
    return Step::kRejected;
  }
  target_ = Target::kSkip;
  if (key_ == "name" && c == '"' && !name_known_) {
    target_ = Target::kName;
    name_text_.clear();
  } else if ((key_ == "arguments" || key_ == "parameters") && !saw_arguments_) {
    target_ = Target::kArguments;
    saw_arguments_ = true;
  }
  opener_ = c;
  depth_ = 0;
  in_string_ = false;
  escape_ = false;
  state_ = State::kValue;
  return PutValue(c);
}

ToolCallObjectReader::Step ToolCallObjectReader::PutValue(char c) {
  const bool scalar = opener_ != '{' && opener_ != '[' && opener_ != '"';
  if (scalar && !IsScalarChar(c)) {
    // The character after a number or a literal belongs to the object.
    EndValue();
    return Put(c);
  }
  bool ended = false;
  if (in_string_) {
    if (escape_) {
      escape_ = false;
    } else if (c == '\\') {
      escape_ = true;
    } else if (c == '"') {
      in_string_ = false;
      ended = depth_ == 0;  // a string value's closing quote
    }
  } else if (c == '"') {
    in_string_ = true;
  } else if (!scalar && (c == '{' || c == '[')) {
    ++depth_;
  } else if (!scalar && (c == '}' || c == ']')) {
    ended = --depth_ == 0;
  }
  if (target_ == Target::kName) name_text_ += c;
  if (target_ == Target::kArguments) arguments_ += c;
  if (ended) EndValue();
  return Step::kMore;
}

void ToolCallObjectReader::EndValue() {
  state_ = State::kAfterValue;
  if (target_ != Target::kName) return;
  const nlohmann::json name =
      nlohmann::json::parse(name_text_, nullptr, /*allow_exceptions=*/false);
  if (name.is_string() && !name.get<std::string>().empty()) {
    name_ = name.get<std::string>();
    name_known_ = true;
  }
}

ToolCallObjectReader::News ToolCallObjectReader::Take() {
  News news;
  if (name_known_ && !name_taken_) {
    news.name = name_;
    name_taken_ = true;
  }
  if (name_taken_) news.arguments = std::exchange(arguments_, std::string());
  return news;
}

}  // namespace sluice::llm

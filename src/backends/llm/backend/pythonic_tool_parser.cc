#include "backends/llm/backend/pythonic_tool_parser.h"

#include <optional>
#include <string>
#include <utility>

#include "backends/llm/backend/pythonic_call.h"

namespace sluice::llm {
namespace {

bool IsBlank(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

// Where a call's text ends: its name, then the ')' that closes its '(' -- brackets balanced
// outside strings. Malformed text shows as early as the brackets and strings let it.
class CallEnd {
 public:
  enum class Step { kMore, kEnd, kBad };

  Step Put(char c) {
    if (open_.empty()) return Name(c);
    if (quote_ != 0) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == quote_) {
        quote_ = 0;
      } else if (c == '\n') {
        return Step::kBad;  // a string that does not end on its line
      }
      return Step::kMore;
    }
    switch (c) {
      case '"':
      case '\'':
        quote_ = c;
        return Step::kMore;
      case '(':
      case '[':
      case '{':
        if (open_.size() > static_cast<size_t>(kMaxPythonicDepth)) return Step::kBad;
        open_ += c;
        return Step::kMore;
      case ')':
      case ']':
      case '}':
        if (open_.back() != (c == ')' ? '(' : c == ']' ? '[' : '{')) return Step::kBad;
        open_.pop_back();
        return open_.empty() ? Step::kEnd : Step::kMore;
      case '#':
        return Step::kBad;  // comments are not read
      default:
        return Step::kMore;
    }
  }

 private:
  // The function's name, blanks, then '('.
  Step Name(char c) {
    if (c == '(' && named_) {
      open_.push_back('(');
      return Step::kMore;
    }
    if (IsBlank(c) && named_) {
      name_done_ = true;
      return Step::kMore;
    }
    if (name_done_ || !(named_ ? IsPythonNameChar(c) : IsPythonNameStart(c))) return Step::kBad;
    named_ = true;
    return Step::kMore;
  }

  bool named_ = false, name_done_ = false;
  std::string open_;  // the brackets open, the call's '(' first
  char quote_ = 0;    // in a string opened by it
  bool escape_ = false;
};

class PythonicParser final : public CharToolCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    // Cut short inside the list: content, unless a call was sent.
    if (mode_ == Mode::kBeforeCall || mode_ == Mode::kCall || mode_ == Mode::kAfterCall) Fail(out);
    return out;
  }

 private:
  enum class Mode { kStart, kContent, kBeforeCall, kCall, kAfterCall, kEnd };

  void Put(char c, ParsedOutput& out) override {
    switch (mode_) {
      case Mode::kStart:
        mode_ = c == '[' ? Mode::kBeforeCall : Mode::kContent;
        break;
      case Mode::kContent:
        out.content += c;
        return;
      case Mode::kEnd:
        return;  // text after the list is not content
      case Mode::kBeforeCall:
      case Mode::kCall:
      case Mode::kAfterCall:
        if (!List(c, out)) return Fail(out, c);
        break;
    }
    if (mode_ == Mode::kContent) out.content += c;
    if (mode_ != Mode::kContent && calls() == 0) raw_ += c;
  }

  // Takes `c` in the list (the '[' taken); false when it does not fit.
  bool List(char c, ParsedOutput& out) {
    switch (mode_) {
      case Mode::kBeforeCall:  // after '[' or ','
        if (IsBlank(c)) return true;
        if (c == ']' && calls() > 0) {  // a trailing comma
          mode_ = Mode::kEnd;
          return true;
        }
        mode_ = Mode::kCall;
        call_.clear();
        end_ = CallEnd();
        return Call(c, out);
      case Mode::kCall:
        return Call(c, out);
      case Mode::kAfterCall:
        if (c == ',') mode_ = Mode::kBeforeCall;
        if (c == ']') mode_ = Mode::kEnd;
        return c == ',' || c == ']' || IsBlank(c);
      case Mode::kStart:
      case Mode::kContent:
      case Mode::kEnd:
        return true;
    }
    return false;
  }

  bool Call(char c, ParsedOutput& out) {
    call_ += c;
    const CallEnd::Step step = end_.Put(c);
    if (step != CallEnd::Step::kEnd) return step == CallEnd::Step::kMore;
    Result<PythonicCall> call = ReadPythonicCall(call_);
    if (!call.ok()) return false;
    SendCall(out, std::move(call->name), call->arguments);
    mode_ = Mode::kAfterCall;
    return true;
  }

  // Not a list of calls: before any call was sent, all of it is content (`c`, which did not
  // fit, included); after, the rest is dropped.
  void Fail(ParsedOutput& out, std::optional<char> c = std::nullopt) {
    if (calls() > 0) {
      mode_ = Mode::kEnd;
      return;
    }
    mode_ = Mode::kContent;
    out.content += std::exchange(raw_, std::string());
    if (c) out.content += *c;
  }

  Mode mode_ = Mode::kStart;
  std::string raw_;   // the output so far, until a call is sent
  std::string call_;  // the current call's text
  CallEnd end_;
};

}  // namespace

std::unique_ptr<ToolCallParser> MakePythonicToolCallParser() {
  return std::make_unique<PythonicParser>();
}

}  // namespace sluice::llm

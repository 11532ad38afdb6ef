#include "backends/llm/backend/tool_call_parser.h"

#include <utility>

#include "backends/llm/backend/tool_call_object_reader.h"

namespace sluice::llm {
namespace {

using Step = ToolCallObjectReader::Step;

constexpr std::string_view kCallOpen = "<tool_call>";
constexpr std::string_view kCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsPrefixOf(std::string_view s, std::string_view tag) {
  return s.size() <= tag.size() && tag.substr(0, s.size()) == s;
}

// The calls' JSON objects, read by one ToolCallObjectReader each, shared by the formats,
// which read the text a character at a time (Put).
class ObjectCallParser : public ToolCallParser {
 public:
  ParsedOutput Feed(std::string_view text) final {
    ParsedOutput out;
    for (char c : text) Put(c, out);
    return out;
  }

 protected:
  virtual void Put(char c, ParsedOutput& out) = 0;
  void StartObject() { reader_ = ToolCallObjectReader(); }
  // Feeds `c` to the current object and passes on what it learnt.
  Step PutObject(char c, ParsedOutput& out) {
    const Step step = reader_.Put(c);
    ToolCallObjectReader::News news = reader_.Take();
    if (!news.name.empty()) StartCall(out, std::move(news.name));
    AppendArguments(out, news.arguments);
    // A call that ends with no arguments takes none: {}.
    if (step != Step::kMore && reader_.named() && !reader_.has_arguments())
      AppendArguments(out, "{}");
    return step;
  }
  bool named() const { return reader_.named(); }

 private:
  ToolCallObjectReader reader_;
};

// <tool_call>{...}</tool_call>, after optional content.
class HermesParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    if (!in_call_) Text(out, std::exchange(held_, std::string()));  // it was not a tag
    return out;
  }

 private:
  void Put(char c, ParsedOutput& out) override {
    if (in_call_) {
      const Step step = PutObject(c, out);
      if (step == Step::kMore) return;
      in_call_ = false;
      if (step == Step::kDone) return;
      // Rejected: `c` follows the call (its closing tag, most likely).
    }
    held_ += c;
    while (!held_.empty()) {
      if (held_ == kCallOpen) {
        held_.clear();
        seen_call_ = in_call_ = true;
        StartObject();
        return;
      }
      if (held_ == kCallClose) {
        held_.clear();
        return;
      }
      if (IsPrefixOf(held_, kCallOpen) || IsPrefixOf(held_, kCallClose)) return;
      Text(out, std::string_view(held_).substr(0, 1));
      held_.erase(0, 1);
    }
  }

  // Text outside the calls: content before the first one, dropped after it.
  void Text(ParsedOutput& out, std::string_view text) const {
    if (!seen_call_) out.content += text;
  }

  std::string held_;  // may be the start of a tag
  bool in_call_ = false, seen_call_ = false;
};

// [<|python_tag|>]{"name": .., "parameters": {..}}; {...}
class Llama3JsonParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    if (mode_ == Mode::kStart) out.content = std::exchange(held_, std::string());
    if (mode_ == Mode::kCall && calls() == 0) out.content = std::exchange(raw_, std::string());
    return out;
  }

 private:
  enum class Mode { kStart, kContent, kCall, kBetween, kTrailing };

  void Put(char c, ParsedOutput& out) override {
    switch (mode_) {
      case Mode::kStart:
        return Start(c, out);
      case Mode::kContent:
        out.content += c;
        return;
      case Mode::kCall:
        return Call(c, out);
      case Mode::kBetween:
        if (IsSpace(c)) return;
        if (c == ';') {
          mode_ = Mode::kCall;
          StartObject();
          return;
        }
        mode_ = Mode::kTrailing;
        return;
      case Mode::kTrailing:
        return;  // text after the calls is not content (vLLM's reading)
    }
  }

  // Until the output shows whether it is a call: leading blanks, the python tag, or '{'.
  void Start(char c, ParsedOutput& out) {
    held_ += c;
    const size_t first = held_.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return;
    const std::string_view start = std::string_view(held_).substr(first);
    if (start != kPythonTag && IsPrefixOf(start, kPythonTag)) return;
    if (start == kPythonTag || start == "{") {
      const bool brace = start == "{";
      mode_ = Mode::kCall;
      raw_ = std::exchange(held_, std::string());
      StartObject();
      if (brace) (void)PutObject('{', out);
      return;
    }
    mode_ = Mode::kContent;
    out.content += std::exchange(held_, std::string());
  }

  void Call(char c, ParsedOutput& out) {
    if (calls() == 0) raw_ += c;  // the first object is content until it names a function
    const Step step = PutObject(c, out);
    if (calls() > 0) raw_.clear();
    if (step == Step::kMore) return;
    if (named()) {
      mode_ = step == Step::kDone ? Mode::kBetween : Mode::kTrailing;
      return;
    }
    if (calls() > 0) {
      mode_ = Mode::kTrailing;
      return;
    }
    mode_ = Mode::kContent;
    out.content += std::exchange(raw_, std::string());
  }

  Mode mode_ = Mode::kStart;
  std::string held_;  // kStart: what came so far
  std::string raw_;   // the first object's text, while it may still be content
};

// tool_choice "required": [{"name": .., "parameters": {..}}, ...] (the grammar's output).
class RequiredParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override { return {}; }

 private:
  enum class Mode { kStart, kBeforeItem, kItem, kAfterItem, kEnd };

  void Put(char c, ParsedOutput& out) override {
    if (mode_ == Mode::kItem) {
      const Step step = PutObject(c, out);
      if (step != Step::kMore) mode_ = step == Step::kDone ? Mode::kAfterItem : Mode::kEnd;
      return;
    }
    if (IsSpace(c) || mode_ == Mode::kEnd) return;
    if (mode_ == Mode::kStart && c == '[') {
      mode_ = Mode::kBeforeItem;
    } else if (mode_ == Mode::kBeforeItem && c == '{') {
      mode_ = Mode::kItem;
      StartObject();
      (void)PutObject(c, out);
    } else if (mode_ == Mode::kAfterItem && c == ',') {
      mode_ = Mode::kBeforeItem;
    } else {
      mode_ = Mode::kEnd;  // ']' or what does not fit
    }
  }

  Mode mode_ = Mode::kStart;
};

// tool_choice naming a function: the output is its arguments.
class NamedParser final : public ToolCallParser {
 public:
  explicit NamedParser(std::string function) : function_(std::move(function)) {}

  ParsedOutput Feed(std::string_view text) override {
    ParsedOutput out;
    if (calls() == 0) StartCall(out, function_);
    AppendArguments(out, text);
    return out;
  }

  ParsedOutput Finish() override {
    ParsedOutput out;
    if (calls() == 0) StartCall(out, function_);
    return out;
  }

 private:
  const std::string function_;
};

}  // namespace

std::string_view ToolCallFormatName(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
  }
  return "";
}

Result<ToolCallFormat> ParseToolCallFormat(std::string_view name) {
  for (ToolCallFormat f : {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json})
    if (ToolCallFormatName(f) == name) return f;
  return InvalidArgument("tool_call_parser '" + std::string(name.substr(0, 64)) +
                         "' is not supported (hermes, llama3_json)");
}

std::optional<ToolCallFormat> DetectToolCallFormat(std::string_view chat_template) {
  auto has = [chat_template](std::string_view s) {
    return chat_template.find(s) != std::string_view::npos;
  };
  if (has(kCallOpen)) return ToolCallFormat::kHermes;
  if (has("<|start_header_id|>") && (has(kPythonTag) || has("\"parameters\"")))
    return ToolCallFormat::kLlama3Json;
  return std::nullopt;
}

void ToolCallParser::StartCall(ParsedOutput& out, std::string name) {
  out.tool_calls.push_back({calls_++, std::move(name), ""});
}

void ToolCallParser::AppendArguments(ParsedOutput& out, std::string_view fragment) {
  if (fragment.empty() || calls_ == 0) return;
  const int32_t index = calls_ - 1;
  if (!out.tool_calls.empty() && out.tool_calls.back().index == index &&
      out.tool_calls.back().name.empty()) {
    out.tool_calls.back().arguments += fragment;
    return;
  }
  out.tool_calls.push_back({index, "", std::string(fragment)});
}

std::unique_ptr<ToolCallParser> MakeToolCallParser(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return std::make_unique<HermesParser>();
    case ToolCallFormat::kLlama3Json:
      return std::make_unique<Llama3JsonParser>();
  }
  return nullptr;
}

std::unique_ptr<ToolCallParser> MakeRequiredToolCallParser() {
  return std::make_unique<RequiredParser>();
}

std::unique_ptr<ToolCallParser> MakeNamedToolCallParser(std::string function) {
  return std::make_unique<NamedParser>(std::move(function));
}

}  // namespace sluice::llm

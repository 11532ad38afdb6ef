#include "backends/llm/backend/tool_call_parser.h"

#include <nlohmann/json.hpp>
#include <utility>

#include "backends/llm/backend/pythonic_tool_parser.h"
#include "backends/llm/backend/tool_call_object_reader.h"

namespace sluice::llm {
namespace {

using Step = ToolCallObjectReader::Step;

constexpr std::string_view kCallOpen = "<tool_call>";
constexpr std::string_view kCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr ToolCallFormat kFormats[] = {ToolCallFormat::kHermes, ToolCallFormat::kLlama3Json,
                                       ToolCallFormat::kMistral, ToolCallFormat::kPythonic};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsPrefixOf(std::string_view s, std::string_view tag) {
  return s.size() <= tag.size() && tag.substr(0, s.size()) == s;
}

// Text that may be the start of `tag`, held back until it is known to be the tag (true) or
// known not to be (it goes to `text`, false).
bool HoldTag(std::string& held, char c, std::string_view tag, std::string& text) {
  held += c;
  if (held == tag) {
    held.clear();
    return true;
  }
  while (!held.empty() && !IsPrefixOf(held, tag)) {
    text += held[0];
    held.erase(0, 1);
  }
  return false;
}

// The calls' JSON objects, read by one ToolCallObjectReader each, shared by the formats,
// which read the text a character at a time (Put).
class ObjectCallParser : public CharToolCallParser {
 protected:
  void StartObject() {
    reader_ = ToolCallObjectReader();
    held_ = {};
  }
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
  // Feeds `c` to the current object, keeping what it learnt for SendObject.
  Step HoldObject(char c) {
    const Step step = reader_.Put(c);
    ToolCallObjectReader::News news = reader_.Take();
    held_.name += news.name;
    held_.arguments += news.arguments;
    return step;
  }
  // `text` as one whole object, held; false when it is not one, names no function or its
  // arguments are not JSON. With
  // `brace_optional` (a tag closed it) the object's closing brace may be missing.
  bool HoldWholeObject(std::string_view text, bool brace_optional) {
    StartObject();
    Step step = Step::kMore;
    size_t i = 0;
    while (i < text.size() && step == Step::kMore) step = HoldObject(text[i++]);
    if (step == Step::kRejected ||
        (step == Step::kMore && !(brace_optional && reader_.members_complete())))
      return false;
    for (; i < text.size(); ++i)
      if (!IsSpace(text[i])) return false;
    return readable();
  }
  // Sends the held call.
  void SendObject(ParsedOutput& out) {
    SendCall(out, std::move(held_.name), held_.arguments);
    held_ = {};
  }
  bool named() const { return reader_.named(); }
  // Whether the held object is a call: it names a function and its arguments are JSON (vLLM
  // reads a call with json.loads; one that fails stays content). No arguments read as {}.
  bool readable() const {
    return named() && (held_.arguments.empty() || nlohmann::json::accept(held_.arguments));
  }

 private:
  ToolCallObjectReader reader_;
  ToolCallObjectReader::News held_;  // HoldObject's
};

// <tool_call>{...}</tool_call>, after optional content; each call held until it ends.
class HermesParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    if (in_call_) {
      EndCall(out, /*closed=*/false);
    } else if (calls() == 0) {
      out.content += std::exchange(held_, std::string());  // it was not a tag
    }
    return out;
  }

 private:
  void Put(char c, ParsedOutput& out) override {
    if (in_call_) {
      call_ += c;
      if (call_.ends_with(kCallClose)) {
        call_.resize(call_.size() - kCallClose.size());
        EndCall(out, /*closed=*/true);
      }
      return;
    }
    if (failed_) {
      out.content += c;
      return;
    }
    // Text outside the calls: content before the first one, dropped after it.
    std::string text;
    const bool opened = HoldTag(held_, c, kCallOpen, text);
    if (calls() == 0) out.content += text;
    if (opened) {
      in_call_ = true;
      call_.clear();
    }
  }

  // The call's text has ended, at its closing tag or with the output.
  void EndCall(ParsedOutput& out, bool closed) {
    in_call_ = false;
    // The object's last brace may be missing before the tag (models drop it now and then), not
    // at the output's end (cut short).
    if (HoldWholeObject(call_, closed)) return SendObject(out);
    if (calls() > 0) return;  // sent calls stand; this one is dropped
    // vLLM's reading of a call it cannot parse: the whole output is content, as written.
    failed_ = true;
    out.content += kCallOpen;
    out.content += call_;
    if (closed) out.content += kCallClose;
  }

  std::string held_;  // may be the start of <tool_call>
  std::string call_;  // the current call's text, after its tag
  bool in_call_ = false;
  bool failed_ = false;  // a call could not be read: the rest is content
};

// Text, then [TOOL_CALLS] [{"name": .., "arguments": {..}}, ...]; each call held until its
// object closes.
class MistralParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    switch (mode_) {
      case Mode::kContent:
        out.content += std::exchange(held_, std::string());  // it was not the token
        break;
      case Mode::kArray:
      case Mode::kBeforeItem:
      case Mode::kItem:
        Fail(out);  // cut short: content unless a call was sent
        break;
      case Mode::kAfterItem:  // a missing ']' ends the array all the same
      case Mode::kEnd:
        break;
    }
    return out;
  }

 private:
  enum class Mode { kContent, kArray, kBeforeItem, kItem, kAfterItem, kEnd };

  void Put(char c, ParsedOutput& out) override {
    if (mode_ == Mode::kContent) {
      // After a failure the text is content, less any further token (vLLM removes them all).
      if (HoldTag(held_, c, kMistralCalls, out.content) && !failed_) mode_ = Mode::kArray;
      return;
    }
    if (mode_ == Mode::kEnd) return;  // text after the array is not content
    if (calls() == 0) raw_ += c;
    if (Array(c, out)) return;
    Fail(out);
  }

  // Takes `c` in the array; false when it does not fit.
  bool Array(char c, ParsedOutput& out) {
    switch (mode_) {
      case Mode::kArray:
        if (c != '[') return IsSpace(c);
        mode_ = Mode::kBeforeItem;
        return true;
      case Mode::kBeforeItem:
        if (c != '{') return IsSpace(c);
        mode_ = Mode::kItem;
        StartObject();
        return HoldObject(c) == Step::kMore;
      case Mode::kItem: {
        const Step step = HoldObject(c);
        if (step == Step::kMore) return true;
        if (step == Step::kRejected || !readable()) return false;
        SendObject(out);
        mode_ = Mode::kAfterItem;
        return true;
      }
      case Mode::kAfterItem:
        if (c == ',') mode_ = Mode::kBeforeItem;
        if (c == ']') mode_ = Mode::kEnd;
        return c == ',' || c == ']' || IsSpace(c);
      case Mode::kContent:
      case Mode::kEnd:
        return true;
    }
    return false;
  }

  // The calls cannot be read: before any call was sent, the text after the token is content
  // (vLLM's reading: the output, less the token); after, the rest is dropped.
  void Fail(ParsedOutput& out) {
    if (calls() > 0) {
      mode_ = Mode::kEnd;
      return;
    }
    failed_ = true;
    mode_ = Mode::kContent;
    out.content += std::exchange(raw_, std::string());
  }

  Mode mode_ = Mode::kContent;
  std::string held_;  // kContent: may be the start of [TOOL_CALLS]
  std::string raw_;   // the text after the token, until a call is sent
  bool failed_ = false;
};

// [<|python_tag|>]{"name": .., "parameters": {..}}; {...}; each call held until its object
// closes.
class Llama3JsonParser final : public ObjectCallParser {
 public:
  ParsedOutput Finish() override {
    ParsedOutput out;
    if (mode_ == Mode::kStart) out.content = std::exchange(held_, std::string());
    if (mode_ == Mode::kCall) Fail(out);  // cut short
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
      if (brace) (void)HoldObject('{');
      return;
    }
    mode_ = Mode::kContent;
    out.content += std::exchange(held_, std::string());
  }

  void Call(char c, ParsedOutput& out) {
    if (calls() == 0) raw_ += c;  // content if the first call cannot be read
    const Step step = HoldObject(c);
    if (step == Step::kMore) return;
    if (step == Step::kDone && readable()) {
      SendObject(out);
      raw_.clear();
      mode_ = Mode::kBetween;
      return;
    }
    Fail(out);
  }

  // The current object is no call (malformed, cut short, or it names no function): before any
  // call was sent the whole output is content, as the model wrote it (vLLM's reading); after,
  // the rest is dropped.
  void Fail(ParsedOutput& out) {
    if (calls() > 0) {
      mode_ = Mode::kTrailing;
      return;
    }
    mode_ = Mode::kContent;
    out.content += std::exchange(raw_, std::string());
  }

  Mode mode_ = Mode::kStart;
  std::string held_;  // kStart: what came so far
  std::string raw_;   // the output's text while its first call may yet be content
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
    case ToolCallFormat::kMistral:
      return "mistral";
    case ToolCallFormat::kPythonic:
      return "pythonic";
  }
  return "";
}

std::string ToolCallFormatNames() {
  std::string names;
  for (ToolCallFormat f : kFormats) {
    if (!names.empty()) names += ", ";
    names += ToolCallFormatName(f);
  }
  return names;
}

Result<ToolCallFormat> ParseToolCallFormat(std::string_view name) {
  for (ToolCallFormat f : kFormats)
    if (ToolCallFormatName(f) == name) return f;
  return InvalidArgument("tool_call_parser '" + std::string(name.substr(0, 64)) +
                         "' is not supported (" + ToolCallFormatNames() + ")");
}

std::optional<ToolCallFormat> DetectToolCallFormat(std::string_view chat_template) {
  auto has = [chat_template](std::string_view s) {
    return chat_template.find(s) != std::string_view::npos;
  };
  if (has(kCallOpen)) return ToolCallFormat::kHermes;
  if (has(kMistralCalls)) return ToolCallFormat::kMistral;
  // vLLM's pythonic templates (Llama 3.2, Llama 4) show the format by example.
  if (has("[func_name1(")) return ToolCallFormat::kPythonic;
  if (has("<|start_header_id|>") && (has(kPythonTag) || has("\"parameters\"")))
    return ToolCallFormat::kLlama3Json;
  return std::nullopt;
}

ParsedOutput CharToolCallParser::Feed(std::string_view text) {
  ParsedOutput out;
  for (char c : text) Put(c, out);
  return out;
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

void ToolCallParser::SendCall(ParsedOutput& out, std::string name, std::string_view arguments) {
  StartCall(out, std::move(name));
  AppendArguments(out, arguments.empty() ? std::string_view("{}") : arguments);
}

std::unique_ptr<ToolCallParser> MakeToolCallParser(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kHermes:
      return std::make_unique<HermesParser>();
    case ToolCallFormat::kLlama3Json:
      return std::make_unique<Llama3JsonParser>();
    case ToolCallFormat::kMistral:
      return std::make_unique<MistralParser>();
    case ToolCallFormat::kPythonic:
      return MakePythonicToolCallParser();
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

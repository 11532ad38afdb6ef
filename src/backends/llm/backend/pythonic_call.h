#pragma once
// One tool call written in Python, as Llama 3.2 and Llama 4 write them (vLLM's "pythonic"
// tool-call format): `get_weather(city="Paris", days=3)`, keyword arguments whose values are
// Python literals -- strings ('...' or "...", Python's escapes), numbers (ints in any base,
// floats, underscores, a sign), True, False, None, and lists and dicts of them (string keys) --
// read into the call's name and its arguments as JSON text, written as vLLM writes them
// (Python's json.dumps: ", " and ": " separators, non-ASCII kept, floats as Python's repr, a
// repeated dict key's last value in its first place).
//
// What is not a call of literals is an InvalidArgument naming the first problem and its byte
// offset: positional or repeated arguments, names and expressions, tuples and sets, string
// prefixes and triple quotes, comments, numbers that do not fit (an int in another base past
// 64 bits, a float past a double's range), a keyword as a name. The tool-call parser then
// leaves the output as content, as vLLM does with what Python's ast cannot read as a call.
// Unlike vLLM, a signed number (`x=-3`) is read: Python's ast sees an operator there, which
// vLLM's parser refuses (its pull requests 15462 and 44777 would read it).
//
// Bounded: text in, text out, nesting at most kMaxPythonicDepth deep.

#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::llm {

inline constexpr int kMaxPythonicDepth = 64;

struct PythonicCall {
  std::string name;
  std::string arguments;  // a JSON object's text, "{}" for none
  bool operator==(const PythonicCall&) const = default;
};

// `text`: the call, blanks around it allowed.
Result<PythonicCall> ReadPythonicCall(std::string_view text);

// Whether `c` may start a Python name (ASCII letters and '_'), or continue one (digits too).
bool IsPythonNameStart(char c);
bool IsPythonNameChar(char c);

}  // namespace sluice::llm

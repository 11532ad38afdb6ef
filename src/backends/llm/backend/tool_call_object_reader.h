#pragma once
// Reads one tool call written as a JSON object -- {"name": "f", "arguments": {...}}, or
// "parameters" as Llama 3 and tool_choice "required" write it -- a character at a time, and
// says what it learnt as soon as it knows it: the function's name once its string is complete,
// then the arguments' JSON text as it arrives (text that comes before the name is held until
// the name is known). Other members are skipped; the first of "arguments" and "parameters"
// counts. It follows the JSON structure (strings, escapes, nesting) without validating it:
// the arguments are passed on as the model wrote them.
//
// The tool-call parsers (tool_call_parser.h) feed it the text of a call, whatever the tokens'
// boundaries. Not thread-safe.

#include <string>

namespace sluice::llm {

class ToolCallObjectReader {
 public:
  enum class Step {
    kMore,      // consumed; the object goes on
    kDone,      // consumed: it closed the object
    kRejected,  // not consumed: it cannot continue the object (the reader is finished)
  };
  Step Put(char c);

  // What was learnt since the last Take: the name (once; empty until it is known) and the
  // arguments' text that came since (empty until the name is known).
  struct News {
    std::string name;
    std::string arguments;
  };
  News Take();

  bool named() const { return name_known_; }
  // Whether any of the arguments' text has been read.
  bool has_arguments() const { return saw_arguments_; }
  // Whether the object read so far lacks only its closing brace: every member it opened is
  // complete (models drop the last brace now and then).
  bool members_complete() const { return state_ == State::kAfterValue; }

 private:
  enum class State {
    kBeforeObject,
    kBeforeKey,
    kKey,
    kColon,
    kBeforeValue,
    kValue,
    kAfterValue,
    kEnd
  };
  enum class Target { kSkip, kName, kArguments };

  Step BeginValue(char c);
  Step PutValue(char c);
  void EndValue();

  State state_ = State::kBeforeObject;
  std::string key_;
  bool key_escape_ = false;
  // The value being read: its target, its first character, nesting depth, string state.
  Target target_ = Target::kSkip;
  char opener_ = 0;
  int depth_ = 0;
  bool in_string_ = false, escape_ = false;
  std::string name_text_;  // the name's JSON string, quotes included
  bool name_known_ = false, name_taken_ = false;
  bool saw_arguments_ = false, arguments_done_ = false;
  std::string name_;
  std::string arguments_;  // read, not yet taken
};

}  // namespace sluice::llm

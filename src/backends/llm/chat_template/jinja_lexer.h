#pragma once
// Jinja lexer: template source -> tokens. Applies the whitespace rules Hugging Face uses
// for chat templates: trim_blocks, lstrip_blocks, no trailing newline kept, and the
// explicit "-" controls on {{- -}} {%- -%} {#- -#}. Comments are dropped here.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::llm::jinja {

struct Token {
  enum class Kind {
    kText,
    kVarBegin,
    kVarEnd,
    kBlockBegin,
    kBlockEnd,
    kName,
    kString,
    kInt,
    kFloat,
    kOp,
    kEof
  };
  Kind kind;
  std::string text;  // text, name, string value or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
};

// Fails with InvalidArgument (naming the line) on an unclosed tag/comment/string or an
// unexpected character.
Result<std::vector<Token>> Tokenize(std::string_view source);

}  // namespace sluice::llm::jinja

#pragma once
// vLLM's "pythonic" tool-call format (Llama 3.2 and Llama 4 with their pythonic templates): the
// whole output is a Python list of calls, `[get_weather(city="Paris"), ping()]`, each call read
// by pythonic_call.h into its name and JSON arguments. An output that does not start with '['
// is content (vLLM's test, so text is streamed at once); one that does is held until it shows
// itself a list of calls -- a name, then '(' -- and each call until its closing parenthesis,
// then sent whole. What is not a list of calls (a malformed call, "[1, 2]", a markdown link, an
// output that ends inside the list) is content as written, unless a call was sent already:
// then the rest is dropped, as is text after the list's ']' (vLLM reads only a list). See
// tool_call_parser.h for the interface.

#include <memory>

#include "backends/llm/backend/tool_call_parser.h"

namespace sluice::llm {

std::unique_ptr<ToolCallParser> MakePythonicToolCallParser();

}  // namespace sluice::llm

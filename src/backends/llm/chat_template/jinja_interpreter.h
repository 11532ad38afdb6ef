#pragma once
// Jinja interpreter: renders a parsed template with the given variables. Every render is
// bounded: a step budget (statements + expressions evaluated), an output size cap and a
// macro call depth cap turn runaway templates into errors, never hangs or crashes.

#include <cstdint>
#include <string>

#include "backends/llm/chat_template/jinja_ast.h"
#include "common/status.h"

namespace sluice::llm::jinja {

struct RenderLimits {
  uint64_t max_steps = 1'000'000;
  size_t max_output_bytes = 4u << 20;
  int max_call_depth = 32;
};

// `vars` become the template's top-level variables. raise_exception(msg) in the
// template returns InvalidArgument(msg).
Result<std::string> Render(const Body& body, const Value::Dict& vars, const RenderLimits& limits);

}  // namespace sluice::llm::jinja

#pragma once
// Jinja parser: tokens -> statement tree, for the subset chat templates use: text, {{ }},
// if/elif/else, for (tuple targets, "if" filter, else), set (name, tuple, ns.attr, block),
// macro, break/continue, generation (body kept). Expressions follow Jinja's precedence.
// include/extends/import and anything else are refused (Unsupported): a template can
// only compute on the values it is given. Nesting depth is capped (no stack overflow).

#include <string_view>

#include "backends/llm/chat_template/jinja_ast.h"
#include "common/status.h"

namespace sluice::llm::jinja {

Result<Body> Parse(std::string_view source);

}  // namespace sluice::llm::jinja

#pragma once
// The constraint a forced tool_choice puts on the output, for the grammar engine (vLLM's):
// a named function's output is its arguments, a JSON value of its `parameters` schema;
// "required"'s is a JSON array of at least one {"name": <one of the tools>, "parameters":
// <that tool's schema>} (of exactly one when parallel tool calls are off). A tool without
// parameters takes {} (an object without properties). The tools' $defs (and definitions) are lifted
// to the array's schema, where their
// "#/$defs/..." references then point; two tools defining one name differently is an error.
// Each tool's schema is compiled on its own first, so that one the grammar engine cannot
// compile is an InvalidArgument naming the function.

#include <optional>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

// None for tool_choice "none" and "auto".
Result<std::optional<llm_contract::StructuredOutput>> ToolChoiceConstraint(
    const std::vector<llm_contract::ToolDefinition>& tools, const llm_contract::ToolChoice& choice,
    bool parallel_tool_calls = true);

}  // namespace sluice::llm

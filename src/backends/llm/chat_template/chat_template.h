#pragma once
// ChatTemplate: a model's chat template (tokenizer_config.json "chat_template") parsed once
// and rendered per request by a sandboxed Jinja subset, byte-compatible with Hugging Face's
// rendering for the real Qwen2/2.5/3, Llama 3/3.1 and Mistral templates.
//
// Sandbox: templates see only the values passed in (JSON data, no host objects; attribute
// access works on dicts only); no include/import; every render is bounded by a step limit,
// an output size cap and a macro depth cap. raise_exception(msg) -> InvalidArgument(msg).
// A parsed ChatTemplate is immutable; Render is thread-safe.
//
// Example:
//   ASSIGN_OR_RETURN(auto tmpl, ChatTemplate::Parse(tokenizer.chat_template()));
//   ASSIGN_OR_RETURN(std::string prompt, tmpl->Render(messages, /*add_generation_prompt=*/true,
//       {{"bos_token", tokenizer.bos_token()}, {"eos_token", tokenizer.eos_token()}}));

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "backends/llm/chat_template/jinja_ast.h"
#include "backends/llm/chat_template/jinja_interpreter.h"
#include "common/status.h"

namespace sluice::llm {

struct ChatTemplateLimits {
  size_t max_source_bytes = 1u << 20;
  jinja::RenderLimits render;
};

class ChatTemplate {
 public:
  // Parse errors are InvalidArgument naming the template line; include/extends/import
  // are Unsupported.
  static Result<std::unique_ptr<ChatTemplate>> Parse(std::string_view source,
                                                     ChatTemplateLimits limits = {});

  // Renders `messages` (a JSON array of {"role", "content", ...}). `extra` (a JSON object)
  // adds variables: bos_token, eos_token, tools, date_string, enable_thinking, ...; a
  // missing "tools" is none, as Hugging Face passes it. Pass ordered_json so that tojson
  // keeps the client's key order. The messages are prepared as transformers'
  // apply_chat_template prepares them: a key whose value is null is dropped (so a client's
  // "tool_calls": null is undefined, not none), and a message's reasoning (the first non-null
  // of reasoning_content, thinking, reasoning) is passed as both reasoning_content and thinking.
  Result<std::string> Render(
      const nlohmann::ordered_json& messages, bool add_generation_prompt,
      const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;

 private:
  ChatTemplate() = default;
  jinja::Body body_;  // constant after construction
  ChatTemplateLimits limits_;
};

}  // namespace sluice::llm

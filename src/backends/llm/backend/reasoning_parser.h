#pragma once
// vLLM's reasoning parsers (`--reasoning-parser`, model.json `reasoning_parser`): a chat
// output's `<think>...</think>` section is the reasoning (OpenAI's message.reasoning_content,
// vLLM's `reasoning`), the rest the content. Chat completions only; Triton's outputs and
// OpenAI completions keep the raw text. A tool-call parser, when there is one, reads the
// content this leaves (vLLM runs the reasoning parser first).
//
// The two parsers differ only in how a request's output starts:
//  - deepseek_r1: inside the reasoning. DeepSeek-R1's template opens `<think>` itself, so the
//    output usually holds only `</think>`; one the model writes itself at the start is dropped.
//  - qwen3: as deepseek_r1 (a leading `<think>` dropped, the text up to `</think>` reasoning,
//    all of it while `</think>` has not come: the output was cut), except that a request whose
//    chat_template_kwargs set enable_thinking to a false value has no reasoning at all.
// For both, a prompt whose last think tag is `</think>` (Qwen3's template with
// enable_thinking false writes an empty `<think>\n\n</think>`) leaves the whole output content,
// as vLLM's serving layer decides from the prompt's tokens (is_reasoning_end).
//
// The split is on text, not token ids, so tags split across tokens (a tokenizer without
// `<think>` tokens) split the same way: a stream holds back what may be the start of a tag.
// The streamed deltas concatenate to the same reasoning and content as the whole text does.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/llm_contract.h"
#include "common/status.h"

namespace sluice::llm {

// One sequence's output, split as it streams. Feed it the text deltas in order, then Finish.
class ReasoningStream {
 public:
  struct Delta {
    std::string reasoning;
    std::string content;
  };

  // Whole-output content (the prompt ended the reasoning, or thinking is off).
  static ReasoningStream ContentOnly() { return ReasoningStream(State::kContent); }
  // Starts in the reasoning; a leading `<think>` (after whitespace) is dropped.
  static ReasoningStream InReasoning() { return ReasoningStream(State::kOpening); }

  // The reasoning and content that `text` completes; text that may begin a tag is held back.
  Delta Feed(std::string_view text);
  // What was held back (the output ended).
  Delta Finish();

  // The output has a reasoning section (possibly empty); false: it is all content.
  bool has_reasoning() const { return has_reasoning_; }

 private:
  enum class State : uint8_t {
    kOpening,    // nothing but whitespace yet: a `<think>` may still open the reasoning
    kReasoning,  // until `</think>`
    kContent,    // after it, or no reasoning at all
  };
  explicit ReasoningStream(State s) : state_(s), has_reasoning_(s != State::kContent) {}

  State state_;
  bool has_reasoning_;
  std::string held_;  // text not yet attributed (a possible tag's start)
};

// One model's reasoning parser (model.json's reasoning_parser). Immutable; thread-safe.
class ReasoningParser {
 public:
  enum class Kind : uint8_t { kDeepSeekR1, kQwen3 };

  // "deepseek_r1" or "qwen3"; anything else is InvalidArgument naming the supported ones.
  static Result<ReasoningParser> Create(std::string_view name);

  // The stream of one sequence of a chat request whose rendered prompt is `prompt` and whose
  // chat_template_kwargs are `template_kwargs` (an object, possibly empty).
  ReasoningStream Start(std::string_view prompt,
                        const nlohmann::ordered_json& template_kwargs) const;

  // The tag that ends the reasoning ("</think>"): where structured output starts (vLLM
  // constrains the output only after the reasoning, unless enable_in_reasoning).
  std::string_view end_tag() const;
  Kind kind() const { return kind_; }
  std::string_view name() const;

 private:
  explicit ReasoningParser(Kind kind) : kind_(kind) {}
  Kind kind_;
};

// Whether `prompt`'s last think tag is the end tag: the prompt closed the reasoning.
bool PromptEndsReasoning(std::string_view prompt);

// Splits `output`'s text through `stream`: its reasoning into output.reasoning, the content
// left in output.text; a finished output (a finish reason) also takes what was held back.
void SplitReasoning(ReasoningStream& stream, llm_contract::LlmOutput& output);

}  // namespace sluice::llm

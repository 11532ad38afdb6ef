#pragma once
// Assembles one OpenAI completion or chat completion (n choices, possibly a batch of
// prompts) from the model's typed outputs (llm_contract::LlmOutput): the streamed chunks
// (`data: {...}\n\n`, the closing usage or error chunk and `data: [DONE]`) and the
// non-streamed body, with logprobs in the endpoint's shape (chat: content[] with top_logprobs;
// completions: tokens, token_logprobs, top_logprobs, text_offset), tool calls in OpenAI's
// (tool_call_accumulator.h) and usage counted as OpenAI and vLLM count it. A model's reasoning
// parser's reasoning is written as vLLM writes it: message/delta `reasoning` and its older
// name `reasoning_content`. Pure: no threads, no I/O; the caller serialises calls.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/llm_contract.h"
#include "common/status.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/tool_call_accumulator.h"

namespace sluice::openai {

class CompletionAssembler {
 public:
  // `id` and `created` are the response's ("chatcmpl-..." / "cmpl-...", Unix seconds).
  CompletionAssembler(const OpenAIRequest& request, std::string id, int64_t created);

  // Takes an output of choice `choice` (0 <= choice < NumChoices). When streaming, returns
  // the chunk to write for it.
  std::optional<std::string> Add(int choice, const llm_contract::LlmOutput& output);

  // The last lines of a stream: an error chunk when `failed`, else the usage chunk when
  // asked; then `data: [DONE]`.
  std::string StreamEnd(const std::optional<Status>& failed) const;

  // The non-streamed response body.
  nlohmann::json Body() const;

  // A prompt's tokens count once however many samples it has (n), as OpenAI and vLLM do.
  nlohmann::json Usage() const;

 private:
  struct Choice {
    std::string text;
    // A reasoning parser's split (chat): the reasoning, and whether there is a section of it.
    std::string reasoning;
    bool has_reasoning = false;
    std::string finish_reason;
    std::vector<llm_contract::PositionLogprobs> logprobs;
    uint32_t prompt_tokens = 0, completion_tokens = 0;
    // Completions' logprobs: where the next token starts in the returned text (the echoed
    // prompt first), in characters; streamed chunks advance it.
    size_t text_offset = 0;
    bool started = false;  // the first chunk (chat's role, the echoed prompt) went out
    ToolCallAccumulator tool_calls;
  };

  std::string Chunk(int index, Choice& c, const llm_contract::LlmOutput& output,
                    const std::vector<nlohmann::json>& tool_calls);
  std::string ChoiceEvent(nlohmann::json choice) const;
  nlohmann::json ChunkBase() const;
  nlohmann::json ChatLogprobs(const std::vector<llm_contract::PositionLogprobs>& positions) const;
  nlohmann::json CompletionLogprobs(const std::vector<llm_contract::PositionLogprobs>& positions,
                                    size_t& text_offset) const;

  const OpenAIRequest& r_;
  const std::string id_;
  const int64_t created_;
  std::vector<Choice> choices_;
};

// OpenAI's text_offset counts characters (Unicode code points of valid UTF-8), as the
// client's string does, not bytes.
size_t CodePoints(std::string_view s);

}  // namespace sluice::openai

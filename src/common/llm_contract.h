#pragma once
// The typed contract of one LLM request and its responses (the `llm` backend, `backend:
// "vllm"` in a Triton repository), declared once for every side: the OpenAI frontend fills
// an LlmRequest from its JSON body, the llm backend fills one from Triton's vLLM-backend
// tensors (text_input, sampling_parameters JSON, stream, exclude_input_in_output, return_*),
// and both validate its sampling parameters against one table (kSamplingRanges). It crosses
// the IPC in binary (ipc/llm_contract_codec.h), never as JSON parsed again; the responses
// come back as typed LlmOutput values (text delta, token ids, finish reason, logprobs with
// their top-k, token counts) from which the OpenAI frontend writes its JSON.
//
// Extending it: a new request field goes here, in the codec (one Put/Get pair each way, the
// round-trip test catches a missing one) and in the parsers that fill it. Tool calling (the
// tools, tool_choice, the messages' tool calls, the parsed calls of an output) is checked
// by common/tool_contract.h.

#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace sluice::llm_contract {

// ---- request ----

// A call an assistant turn made (OpenAI's message tool_calls, type "function").
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text, as the client sent it ("" reads as {})
  bool operator==(const ToolCall&) const = default;
};

// One chat turn, as the chat template reads it. OpenAI's content parts arrive flattened to
// their text; a null content (an assistant turn that only called tools) stays null.
struct ChatMessage {
  std::string role;
  std::optional<std::string> content;
  std::optional<std::string> name;
  std::vector<ToolCall> tool_calls;         // assistant turns
  std::optional<std::string> tool_call_id;  // role "tool": the call it answers
  bool operator==(const ChatMessage&) const = default;
};

inline constexpr size_t kMaxChatTemplateKwargsBytes = 64u << 10;

// The prompt: text, token ids (OpenAI's token-id prompts), or chat messages that the model's
// chat template renders.
struct Prompt {
  enum class Kind : uint8_t { kText = 0, kTokenIds = 1, kChat = 2 };
  Kind kind = Kind::kText;
  std::string text;                   // kText
  std::vector<int32_t> token_ids;     // kTokenIds
  std::vector<ChatMessage> messages;  // kChat
  bool add_generation_prompt = true;  // kChat
  // kChat: vLLM's chat_template_kwargs, a JSON object of extra template variables (e.g.
  // {"enable_thinking": false}) given to the template as they are; empty: none. Data for the
  // template, so it travels as the client's JSON text (at most kMaxChatTemplateKwargsBytes).
  std::string chat_template_kwargs;
  bool operator==(const Prompt&) const = default;
};

inline constexpr size_t kMaxStructuredOutputBytes = 1u << 20;  // a schema, a pattern, a grammar

// Constrained decoding (vLLM's structured_outputs and guided_*, OpenAI's response_format):
// the output is a sentence of this grammar. The engine compiles it when the request is added
// (backends/llm/structured/structured_output_spec.h, whose Kind this mirrors); what it cannot
// compile is an InvalidArgument there, so the parsers check only the shapes.
struct StructuredOutput {
  enum class Kind : uint8_t {
    kJsonSchema = 0,  // text: the schema (JSON)
    kJsonObject = 1,  // any JSON object; text empty
    kRegex = 2,       // text: the pattern, matched whole
    kChoice = 3,      // text: a JSON array of strings, one of which is the whole output
    kGrammar = 4,     // text: GBNF
  };
  Kind kind = Kind::kJsonObject;
  std::string text;  // at most kMaxStructuredOutputBytes
  bool operator==(const StructuredOutput&) const = default;
};

// Sampling and stopping parameters with vLLM's names and defaults (the engine's
// SamplingParams, which the backend fills from these). Numbers are kept as the client sent
// them (doubles) until the engine takes them.
struct SamplingParameters {
  int32_t n = 1;
  double temperature = 1.0;
  double top_p = 1.0;
  int32_t top_k = 0;  // 0 or -1: off
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  double presence_penalty = 0.0;
  double frequency_penalty = 0.0;
  std::optional<int64_t> seed;
  std::optional<int32_t> max_tokens = 16;  // nullopt: up to the context
  int32_t min_tokens = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  std::vector<std::pair<int32_t, double>> logit_bias;  // token id, bias
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  std::optional<int32_t> logprobs;  // top logprobs per token (0: the chosen one's only)
  // Here, not beside the prompt, as vLLM's SamplingParams and the engine's hold it.
  std::optional<StructuredOutput> structured_output;
  bool operator==(const SamplingParameters&) const = default;
};

// What the responses carry. Triton's return_* flags choose its output tensors; the OpenAI
// frontend asks for typed responses (LlmOutput), which carry everything.
struct OutputOptions {
  bool stream = false;
  bool exclude_input_in_output = false;
  bool return_finish_reason = false;
  bool return_cumulative_logprob = false;
  bool return_logprobs = false;
  bool return_num_input_tokens = false;
  bool return_num_output_tokens = false;
  // Responses as one encoded LlmOutput each (ipc/llm_contract_codec.h), not Triton's tensors.
  bool typed_responses = false;
  // Prompt + max_tokens over the context is an error with vLLM's OpenAI server's message;
  // else (vLLM's engine, Triton's backend) generation stops at the context's end.
  bool check_context = false;
  bool operator==(const OutputOptions&) const = default;
};

// A function the model may call (OpenAI's tools[i], type "function"): rendered by the chat
// template, and the schema of its arguments when tool_choice forces a call.
struct ToolDefinition {
  std::string name;
  std::optional<std::string> description;
  std::optional<std::string> parameters;  // a JSON Schema (a JSON object's text)
  std::optional<bool> strict;
  bool operator==(const ToolDefinition&) const = default;
};

// OpenAI's tool_choice. kAuto: the model's tool-call parser reads calls out of the output;
// kRequired: the output is a JSON array of {"name", "parameters"} calls (at least one);
// kFunction: the output is the arguments of `function`; kNone: no call is parsed.
struct ToolChoice {
  enum class Kind : uint8_t { kNone = 0, kAuto = 1, kRequired = 2, kFunction = 3 };
  Kind kind = Kind::kNone;
  std::string function;  // kFunction
  bool operator==(const ToolChoice&) const = default;
};

// What the request asks: generation, or (vLLM's /tokenize and /detokenize) only the
// prompt's token ids, or the text of its token ids.
enum class Task : uint8_t { kGenerate = 0, kTokenize = 1, kDetokenize = 2 };

struct LlmRequest {
  Task task = Task::kGenerate;
  Prompt prompt;
  SamplingParameters sampling;
  OutputOptions output;
  // kTokenize: whether the tokenizer adds its special tokens; default true for text, false
  // for chat messages (the template writes them), as vLLM's /tokenize.
  std::optional<bool> add_special_tokens;
  // The structured-output constraint is sampling.structured_output. Tools are passed to the
  // chat template; tool_choice says how calls are read out of the output.
  std::vector<ToolDefinition> tools;
  ToolChoice tool_choice;
  bool parallel_tool_calls = true;  // false: at most one call
  bool operator==(const LlmRequest&) const = default;
};

// ---- sampling ranges: declared once ----

// Which API a request came through: the OpenAI API narrows a few ranges (temperature up to
// 2, as OpenAI's), Triton's vLLM contract takes what vLLM's engine takes.
enum class Surface { kOpenAI, kTriton };

// One numeric sampling parameter's valid values: [min, max] (min excluded when
// `min_exclusive`); `openai_max` is the OpenAI API's upper bound.
struct SamplingRange {
  std::string_view name;
  double min;
  bool min_exclusive;
  double max;
  double openai_max;
};

inline constexpr int32_t kMaxN = 16;
inline constexpr int32_t kMaxLogprobs = 20;
inline constexpr size_t kMaxStopStrings = 64;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr size_t kMaxStopTokenIds = 1024;
inline constexpr size_t kMaxLogitBias = 1024;
inline constexpr double kMaxAbsLogitBias = 100;

inline constexpr double kUnbounded = std::numeric_limits<double>::infinity();
inline constexpr SamplingRange kSamplingRanges[] = {
    {"n", 1, false, kMaxN, kMaxN},
    {"temperature", 0, false, kUnbounded, 2},
    {"top_p", 0, true, 1, 1},
    {"top_k", -1, false, std::numeric_limits<int32_t>::max(), 1 << 20},
    {"min_p", 0, false, 1, 1},
    {"repetition_penalty", 0, true, kUnbounded, 100},
    {"presence_penalty", -2, false, 2, 2},
    {"frequency_penalty", -2, false, 2, 2},
    {"max_tokens", 1, false, std::numeric_limits<int32_t>::max(), 1 << 24},
    {"min_tokens", 0, false, std::numeric_limits<int32_t>::max(), 1 << 24},
    {"logprobs", 0, false, kMaxLogprobs, kMaxLogprobs},
    {"best_of", 1, false, kMaxN, kMaxN},
};

// The range of `name` (one of kSamplingRanges), or null.
const SamplingRange* FindSamplingRange(std::string_view name);

// InvalidArgument naming `name` and the range unless `value` is finite and in it, e.g.
// "'top_p' must be in (0, 1], got 0". `field` is how the message names it (OpenAI's
// "max_completion_tokens" is max_tokens); empty: the range's name.
Status CheckSamplingRange(std::string_view name, double value, Surface surface,
                          std::string_view field = {});

// Every parameter against the table and the list caps (stop strings, stop_token_ids,
// logit_bias, the structured-output text's size); token ids are checked against the
// vocabulary by the engine.
Status ValidateSampling(const SamplingParameters& p, Surface surface);

// vLLM's best_of: at least n, and (Sluice draws n samples, no more) not above it: Unsupported.
Status CheckBestOf(int64_t best_of, int32_t n);

// ---- responses ----

// kToolCalls: stopped after calling tools (tool_choice auto or required), as OpenAI says it.
enum class FinishReason : uint8_t { kNone = 0, kStop = 1, kLength = 2, kAbort = 3, kToolCalls = 4 };
// "", "stop", "length", "abort", "tool_calls".
std::string_view FinishReasonName(FinishReason reason);

// One token with its logprob: its text (special tokens written), and its bytes (a token
// may hold part of a UTF-8 character, whose text is then U+FFFD).
struct TokenLogprob {
  int32_t token_id = 0;
  std::string token;
  std::string bytes;
  float logprob = 0;
  bool operator==(const TokenLogprob&) const = default;
};

// The chosen token of one position and the most likely ones there (sampling.logprobs of them).
struct PositionLogprobs {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;
  bool operator==(const PositionLogprobs&) const = default;
};

// A piece of a tool call parsed out of the output, in OpenAI's streamed shape: the call's
// first piece names the function (its arguments empty), the next ones carry fragments of its
// arguments' JSON text. `index` counts the calls of one choice from 0.
struct ToolCallDelta {
  int32_t index = 0;
  std::string name;       // the first piece of a call only
  std::string arguments;  // a fragment
  // The first piece of a call only: its id, when the model's format has its own kind
  // (Mistral's 9 alphanumerics, which its chat template requires); empty: the frontend's own.
  std::string id;
  bool operator==(const ToolCallDelta&) const = default;
};

// One response of one sequence (choice) of a request asked with typed_responses: what it
// produced since the previous one. A tokenize reply has the prompt's ids in token_ids and
// max_model_len; a detokenize reply the text.
struct LlmOutput {
  int32_t index = 0;               // sequence 0..n-1
  std::string text;                // new text (a request with tools: the content, calls apart)
  std::vector<int32_t> token_ids;  // new tokens
  FinishReason finish_reason = FinishReason::kNone;
  double cumulative_logprob = 0;
  std::vector<PositionLogprobs> logprobs;  // per new token, when asked
  uint32_t num_prompt_tokens = 0;
  uint32_t num_output_tokens = 0;  // so far
  uint32_t max_model_len = 0;      // tokenize replies
  std::vector<ToolCallDelta> tool_calls;  // parsed out of the new text (tool_choice not none)
  // A chat output split by the model's reasoning parser (model.json reasoning_parser): the new
  // reasoning text here, the new content in `text`. has_reasoning: the output has a reasoning
  // section (vLLM's `reasoning` is then a string, possibly empty, else null).
  std::string reasoning;
  bool has_reasoning = false;
  bool operator==(const LlmOutput&) const = default;
};

}  // namespace sluice::llm_contract

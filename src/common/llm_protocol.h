#pragma once
// The request/response contract of LLM models (the `llm` backend, `backend: "vllm"` in a
// Triton repository): Triton's vLLM-backend tensor names, plus the request parameters that
// Sluice's OpenAI frontend uses. Shared by the backend (which serves it) and the frontends
// (which speak it), so neither includes the other.

#include <string_view>

namespace sluice::llm_protocol {

// Inputs (Triton vLLM backend contract).
inline constexpr std::string_view kTextInput = "text_input";                // BYTES [1], required
inline constexpr std::string_view kStream = "stream";                        // BOOL [1]
inline constexpr std::string_view kSamplingParameters = "sampling_parameters";  // BYTES [1], JSON
inline constexpr std::string_view kExcludeInputInOutput = "exclude_input_in_output";  // BOOL [1]
inline constexpr std::string_view kReturnFinishReason = "return_finish_reason";
inline constexpr std::string_view kReturnCumulativeLogprob = "return_cumulative_logprob";
inline constexpr std::string_view kReturnLogprobs = "return_logprobs";
inline constexpr std::string_view kReturnNumInputTokens = "return_num_input_tokens";
inline constexpr std::string_view kReturnNumOutputTokens = "return_num_output_tokens";

// Outputs.
inline constexpr std::string_view kTextOutput = "text_output";          // BYTES [-1]
inline constexpr std::string_view kFinishReason = "finish_reason";      // BYTES [-1]: "stop" | "length" | "abort"
inline constexpr std::string_view kCumulativeLogprob = "cumulative_logprob";  // FP32 [-1]
// BYTES [-1]: JSON array, one entry per generated token of this response:
//   {"token_id": int, "token": str, "bytes": [int...], "logprob": float,
//    "top_logprobs": [{"token_id", "token", "bytes", "logprob"}...]}
inline constexpr std::string_view kLogprobs = "logprobs";
inline constexpr std::string_view kNumInputTokens = "num_input_tokens";    // UINT32 [1]
inline constexpr std::string_view kNumOutputTokens = "num_output_tokens";  // UINT32 [-1]

// Request parameters (Sluice). When present, the prompt is the model's chat template
// rendered over these messages, and `text_input` is ignored.
//   sluice_chat_messages: string, JSON array of OpenAI chat messages
//   sluice_add_generation_prompt: bool (default true)
inline constexpr std::string_view kChatMessagesParameter = "sluice_chat_messages";
inline constexpr std::string_view kAddGenerationPromptParameter = "sluice_add_generation_prompt";
// sluice_prompt_token_ids: string, JSON array of token ids: the prompt as tokens (OpenAI's
// token-id prompts); `text_input` is then ignored. Not with sluice_chat_messages.
inline constexpr std::string_view kPromptTokenIdsParameter = "sluice_prompt_token_ids";
// sluice_check_context: bool (default false). True (the OpenAI endpoints, as vLLM's OpenAI
// server): a prompt whose tokens plus max_tokens exceed the model's context is refused with
// vLLM's message. False (Triton's vLLM backend, as vLLM's engine): generation stops at the
// context's end, finish reason "length".
inline constexpr std::string_view kCheckContextParameter = "sluice_check_context";
// sluice_tokenize: bool (default false). The request only tokenizes its prompt (text_input,
// or the chat template over sluice_chat_messages) and generates nothing: one response with
// output sluice_token_ids (INT32 [-1]) and response parameter sluice_max_model_len (int64).
// vLLM's /tokenize.
inline constexpr std::string_view kTokenizeParameter = "sluice_tokenize";
// sluice_add_special_tokens: bool; with sluice_tokenize. Default true for text, false for
// chat messages (the template writes them), as vLLM's /tokenize.
inline constexpr std::string_view kAddSpecialTokensParameter = "sluice_add_special_tokens";
// sluice_detokenize: bool (default false). The request decodes sluice_prompt_token_ids
// (special tokens kept) and generates nothing: one response with text_output. Ids outside
// the vocabulary are an error. vLLM's /detokenize.
inline constexpr std::string_view kDetokenizeParameter = "sluice_detokenize";
inline constexpr std::string_view kTokenIdsOutput = "sluice_token_ids";
inline constexpr std::string_view kMaxModelLenParameter = "sluice_max_model_len";

}  // namespace sluice::llm_protocol

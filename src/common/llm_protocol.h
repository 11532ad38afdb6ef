#pragma once
// The names of the LLM models' tensors and parameters (the `llm` backend, `backend: "vllm"`
// in a Triton repository): Triton's vLLM-backend contract, plus the one parameter and output
// that carry Sluice's typed contract (common/llm_contract.h). Shared by the backend (which serves
// it) and the frontends (which speak it), so neither includes the other.

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

// Outputs (Triton's vLLM backend; Sluice's own requests get kLlmOutput instead).
inline constexpr std::string_view kTextOutput = "text_output";          // BYTES [-1]
inline constexpr std::string_view kFinishReason = "finish_reason";      // BYTES [-1]: "stop" | "length" | "abort"
inline constexpr std::string_view kCumulativeLogprob = "cumulative_logprob";  // FP32 [-1]
// BYTES [-1]: JSON array, one entry per generated token of this response:
//   {"token_id": int, "token": str, "bytes": [int...], "logprob": float,
//    "top_logprobs": [{"token_id", "token", "bytes", "logprob"}...]}
inline constexpr std::string_view kLogprobs = "logprobs";
inline constexpr std::string_view kNumInputTokens = "num_input_tokens";    // UINT32 [1]
inline constexpr std::string_view kNumOutputTokens = "num_output_tokens";  // UINT32 [-1]

// Sluice's own requests (the OpenAI frontend's completions, chat, /tokenize, /detokenize):
// the request parameter sluice_llm_request holds one encoded llm_contract::LlmRequest
// (ipc/llm_contract_codec.h; the prompt, sampling parameters and output options are all in
// it, and the Triton inputs above other than an empty text_input, which the model's
// configuration requires, are absent). Each response then holds one output, sluice_llm_output
// (UINT8 [-1]): an encoded llm_contract::LlmOutput.
inline constexpr std::string_view kLlmRequestParameter = "sluice_llm_request";
inline constexpr std::string_view kLlmOutput = "sluice_llm_output";

}  // namespace sluice::llm_protocol

#pragma once
// The APIs the benchmark speaks, as pure functions: request bodies built from a
// BenchRequest, and each streamed chunk (or non-streamed body) read back into what the
// statistics need: content deltas, usage counts, the end marker, in-band errors.
//
//   chat         POST /v1/chat/completions   SSE chunks choices[0].delta.content, [DONE]
//   completions  POST /v1/completions        SSE chunks choices[0].text, [DONE]
//   generate     POST /v2/models/{m}/generate         one JSON {"text_output": ...}
//   generate_stream POST /v2/models/{m}/generate_stream  SSE {"text_output": delta} (no [DONE])
//   grpc         ModelStreamInfer: text_input, stream, sampling_parameters -> text_output

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "tools/bench/workload.h"

namespace sluice::bench {

enum class Api { kChat, kCompletions, kGenerate, kGenerateStream, kGrpcStream };

Result<Api> ParseApi(std::string_view name);
std::string_view ApiName(Api api);
// True for the APIs whose responses arrive as a stream of deltas.
bool IsStreaming(Api api, bool openai_stream);

struct SamplingOptions {
  bool stream = true;        // OpenAI APIs only (generate_stream and grpc always stream)
  bool ignore_eos = true;    // so that the output length is honoured
  bool send_min_tokens = true;  // min_tokens = max_tokens, for servers without ignore_eos
  double temperature = 0.0;
  std::optional<uint64_t> seed;
  nlohmann::json extra = nlohmann::json::object();  // merged into the body / parameters
  // Any model, not only the LLM contract: when set, the body sent verbatim (HTTP) or the
  // KServe inputs {"inputs": [...]} (gRPC) instead of one built from the prompt, and every
  // streamed response counts as one output token (e.g. the `repeat` model's IN/DELAY/WAIT).
  std::optional<nlohmann::json> raw_body;
};

// The HTTP path for `api` (empty for grpc).
std::string RequestPath(Api api, std::string_view model);

// The JSON request body (HTTP APIs) for one request.
std::string BuildRequestBody(Api api, std::string_view model, const BenchRequest& request,
                             const SamplingOptions& options);

// The vLLM-style sampling parameters JSON (generate's "parameters", gRPC's
// sampling_parameters input): max_tokens, min_tokens, ignore_eos, temperature, seed.
nlohmann::json SamplingParameters(const BenchRequest& request, const SamplingOptions& options);

// What one chunk (a data payload or a whole non-streamed body) carries.
struct ChunkInfo {
  enum class Kind { kData, kDone, kError };
  Kind kind = Kind::kData;
  std::string text;  // generated text in this chunk (may be empty)
  std::optional<int64_t> prompt_tokens;      // from usage, when present
  // From usage, when present. Triton's generate and gRPC streams (num_output_tokens) count
  // the tokens of this response only, as the vLLM backend does: a stream's total is the sum.
  std::optional<int64_t> completion_tokens;
  std::string error;
};

// Reads one SSE data payload or response body of `api`. Never throws; malformed JSON is
// kError. A JSON object with an "error" member is kError (in-band error).
ChunkInfo ParseChunk(Api api, std::string_view data);

}  // namespace sluice::bench

#include "backends/llm/backend/llm_response.h"

#include <nlohmann/json.hpp>

#include "common/llm_protocol.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::llm {
namespace {

namespace proto = llm_protocol;
using nlohmann::json;

Tensor BytesTensor(std::string_view name, const std::vector<std::string>& values) {
  Tensor t{std::string(name), DataType::kBytes, {static_cast<int64_t>(values.size())}, {}};
  for (const auto& v : values) AppendBytesElement(t.data, v);
  return t;
}

template <typename T>
Tensor ScalarTensor(std::string_view name, DataType type, const std::vector<T>& values) {
  Tensor t{std::string(name), type, {static_cast<int64_t>(values.size())}, {}};
  t.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
  return t;
}

llm_contract::TokenLogprob Token(const Tokenizer& tok, int32_t id, float logprob) {
  const std::span<const int32_t> one(&id, 1);
  return {id, tok.Decode(one, false), tok.DecodeRaw(one, false), logprob};
}

json TokenJson(const llm_contract::TokenLogprob& t) {
  json bytes = json::array();
  for (unsigned char c : t.bytes) bytes.push_back(c);
  return json{
      {"token_id", t.token_id}, {"token", t.token}, {"bytes", bytes}, {"logprob", t.logprob}};
}

}  // namespace

std::vector<llm_contract::PositionLogprobs> PositionLogprobsOf(const Tokenizer& tok,
                                                               const SequenceOutput& s) {
  std::vector<llm_contract::PositionLogprobs> out;
  out.reserve(s.token_ids.size());
  for (size_t i = 0; i < s.token_ids.size(); ++i) {
    llm_contract::PositionLogprobs p;
    p.chosen = Token(tok, s.token_ids[i], i < s.logprobs.size() ? s.logprobs[i] : 0.f);
    if (i < s.top_logprobs.size())
      for (const auto& t : s.top_logprobs[i]) p.top.push_back(Token(tok, t.token, t.logprob));
    out.push_back(std::move(p));
  }
  return out;
}

llm_contract::FinishReason ContractFinishReason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
    case FinishReason::kError:
      return llm_contract::FinishReason::kNone;
    case FinishReason::kStop:
      return llm_contract::FinishReason::kStop;
    case FinishReason::kLength:
      return llm_contract::FinishReason::kLength;
    case FinishReason::kAbort:
      return llm_contract::FinishReason::kAbort;
  }
  return llm_contract::FinishReason::kNone;
}

llm_contract::LlmOutput TypedOutput(const Tokenizer& tokenizer, const SequenceOutput& s,
                                    int32_t num_prompt_tokens, bool with_logprobs) {
  llm_contract::LlmOutput out;
  out.index = s.index;
  out.text = s.text;
  out.token_ids = s.token_ids;
  out.finish_reason = ContractFinishReason(s.finish_reason);
  out.cumulative_logprob = s.cumulative_logprob;
  if (with_logprobs) out.logprobs = PositionLogprobsOf(tokenizer, s);
  out.num_prompt_tokens = static_cast<uint32_t>(num_prompt_tokens);
  out.num_output_tokens = static_cast<uint32_t>(s.num_output_tokens);
  return out;
}

Result<Tensor> LlmOutputTensor(const llm_contract::LlmOutput& output) {
  ASSIGN_OR_RETURN(std::string bytes, ipc::EncodeLlmOutput(output));
  Tensor t{
      std::string(proto::kLlmOutput), DataType::kUint8, {static_cast<int64_t>(bytes.size())}, {}};
  t.data = std::move(bytes);
  return t;
}

std::string TritonLogprobsJson(const std::vector<llm_contract::PositionLogprobs>& positions) {
  json out = json::array();
  for (const auto& p : positions) {
    json e = TokenJson(p.chosen);
    json top = json::array();
    for (const auto& t : p.top) top.push_back(TokenJson(t));
    e["top_logprobs"] = std::move(top);
    out.push_back(std::move(e));
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::vector<Tensor> TritonOutputs(const llm_contract::OutputOptions& o, const TritonRows& rows,
                                  uint32_t num_prompt_tokens) {
  std::vector<Tensor> out;
  out.push_back(BytesTensor(proto::kTextOutput, rows.texts));
  if (o.return_finish_reason) out.push_back(BytesTensor(proto::kFinishReason, rows.finishes));
  if (o.return_cumulative_logprob)
    out.push_back(ScalarTensor(proto::kCumulativeLogprob, DataType::kFp32, rows.cumulative));
  if (o.return_logprobs) out.push_back(BytesTensor(proto::kLogprobs, rows.logprobs));
  if (o.return_num_input_tokens)
    out.push_back(ScalarTensor(proto::kNumInputTokens, DataType::kUint32,
                               std::vector<uint32_t>{num_prompt_tokens}));
  if (o.return_num_output_tokens)
    out.push_back(ScalarTensor(proto::kNumOutputTokens, DataType::kUint32, rows.num_output));
  return out;
}

}  // namespace sluice::llm

#include "ipc/llm_contract_codec.h"

#include <bit>
#include <cmath>

#include "common/tool_contract.h"
#include "ipc/wire_buffer.h"

namespace sluice::ipc {
namespace {

using namespace llm_contract;

// ---- encoding: the first field over its cap is remembered and returned ----

class Out {
 public:
  void U8(uint8_t v) { w_.U8(v); }
  void Bool(bool v) { w_.U8(v ? 1 : 0); }
  void I32(int32_t v) { w_.U32(static_cast<uint32_t>(v)); }
  void U32(uint32_t v) { w_.U32(v); }
  void I64(int64_t v) { w_.I64(v); }
  void F64(double v) { w_.F64(v); }
  void F32(float v) { w_.U32(std::bit_cast<uint32_t>(v)); }
  void Str(std::string_view field, std::string_view s, uint32_t cap) {
    if (s.size() > cap) Fail(field, s.size(), cap);
    w_.Str(s.substr(0, cap));
  }
  // A list's count; its elements follow.
  bool Count(std::string_view field, size_t n, uint32_t cap) {
    if (n > cap) {
      Fail(field, n, cap);
      w_.U32(0);
      return false;
    }
    w_.U32(static_cast<uint32_t>(n));
    return true;
  }
  void Ids(std::string_view field, const std::vector<int32_t>& ids, uint32_t cap) {
    if (Count(field, ids.size(), cap))
      for (int32_t id : ids) I32(id);
  }
  Result<std::string> Finish() {
    if (!status_.ok()) return status_;
    return w_.Take();
  }

 private:
  void Fail(std::string_view field, size_t n, uint32_t cap) {
    if (status_.ok())
      status_ = InvalidArgument(std::string(field) + ": " + std::to_string(n) +
                                " is over the limit of " + std::to_string(cap));
  }
  WireWriter w_;
  Status status_;
};

void PutMessageToolFields(Out& o, const ChatMessage& m) {
  if (o.Count("tool calls", m.tool_calls.size(), kMaxToolCallsPerMessage)) {
    for (const ToolCall& c : m.tool_calls) {
      o.Str("tool call id", c.id, kMaxLlmShortBytes);
      o.Str("tool call name", c.name, kMaxToolNameBytes);
      o.Str("tool call arguments", c.arguments, kMaxLlmTextBytes);
    }
  }
  o.Bool(m.tool_call_id.has_value());
  if (m.tool_call_id) o.Str("tool_call_id", *m.tool_call_id, kMaxLlmShortBytes);
}

void PutTools(Out& o, const LlmRequest& r) {
  const std::vector<ToolDefinition>& tools = r.tools;
  const ToolChoice& choice = r.tool_choice;
  if (o.Count("tools", tools.size(), kMaxTools)) {
    for (const ToolDefinition& t : tools) {
      o.Str("tool name", t.name, kMaxToolNameBytes);
      o.Bool(t.description.has_value());
      if (t.description) o.Str("tool description", *t.description, kMaxLlmTextBytes);
      o.Bool(t.parameters.has_value());
      if (t.parameters) o.Str("tool parameters", *t.parameters, kMaxStructuredOutputBytes);
      o.Bool(t.strict.has_value());
      if (t.strict) o.Bool(*t.strict);
    }
  }
  o.U8(static_cast<uint8_t>(choice.kind));
  o.Str("tool_choice function", choice.function, kMaxToolNameBytes);
  o.Bool(r.parallel_tool_calls);
}

void PutPrompt(Out& o, const Prompt& p) {
  o.U8(static_cast<uint8_t>(p.kind));
  o.Str("prompt text", p.text, kMaxLlmTextBytes);
  o.Ids("prompt token ids", p.token_ids, kMaxLlmTokenIds);
  if (o.Count("chat messages", p.messages.size(), kMaxLlmChatMessages)) {
    for (const ChatMessage& m : p.messages) {
      o.Str("chat message role", m.role, kMaxLlmShortBytes);
      o.Bool(m.content.has_value());
      if (m.content) o.Str("chat message content", *m.content, kMaxLlmTextBytes);
      o.Bool(m.name.has_value());
      if (m.name) o.Str("chat message name", *m.name, kMaxLlmShortBytes);
      PutMessageToolFields(o, m);
    }
  }
  o.Bool(p.add_generation_prompt);
  o.Str("chat_template_kwargs", p.chat_template_kwargs, kMaxChatTemplateKwargsBytes);
}

void PutSampling(Out& o, const SamplingParameters& s) {
  o.I32(s.n);
  o.F64(s.temperature);
  o.F64(s.top_p);
  o.I32(s.top_k);
  o.F64(s.min_p);
  o.F64(s.repetition_penalty);
  o.F64(s.presence_penalty);
  o.F64(s.frequency_penalty);
  o.Bool(s.seed.has_value());
  if (s.seed) o.I64(*s.seed);
  o.Bool(s.max_tokens.has_value());
  if (s.max_tokens) o.I32(*s.max_tokens);
  o.I32(s.min_tokens);
  if (o.Count("stop", s.stop.size(), kMaxStopStrings))
    for (const std::string& stop : s.stop) o.Str("stop string", stop, kMaxStopStringBytes);
  o.Ids("stop_token_ids", s.stop_token_ids, kMaxStopTokenIds);
  o.Bool(s.ignore_eos);
  if (o.Count("logit_bias", s.logit_bias.size(), kMaxLogitBias)) {
    for (const auto& [id, bias] : s.logit_bias) {
      o.I32(id);
      o.F64(bias);
    }
  }
  o.Bool(s.include_stop_str_in_output);
  o.Bool(s.skip_special_tokens);
  o.Bool(s.logprobs.has_value());
  if (s.logprobs) o.I32(*s.logprobs);
  o.Bool(s.structured_output.has_value());
  if (s.structured_output) {
    o.U8(static_cast<uint8_t>(s.structured_output->kind));
    o.Str("structured output", s.structured_output->text, kMaxStructuredOutputBytes);
  }
}

void PutOutputOptions(Out& o, const OutputOptions& f) {
  for (bool b : {f.stream, f.exclude_input_in_output, f.return_finish_reason,
                 f.return_cumulative_logprob, f.return_logprobs, f.return_num_input_tokens,
                 f.return_num_output_tokens, f.typed_responses, f.check_context})
    o.Bool(b);
}

void PutToken(Out& o, const TokenLogprob& t) {
  o.I32(t.token_id);
  o.Str("logprob token", t.token, kMaxLlmShortBytes);
  o.Str("logprob bytes", t.bytes, kMaxLlmShortBytes);
  o.F32(t.logprob);
}

// ---- decoding ----

class In {
 public:
  explicit In(std::string_view bytes) : r_(bytes) {}
  Result<uint8_t> U8(std::string_view f) { return r_.U8(f); }
  Result<bool> Bool(std::string_view f) { return r_.Bool(f); }
  Result<int32_t> I32(std::string_view f) {
    ASSIGN_OR_RETURN(uint32_t v, r_.U32(f));
    return static_cast<int32_t>(v);
  }
  Result<uint32_t> U32(std::string_view f) { return r_.U32(f); }
  Result<int64_t> I64(std::string_view f) { return r_.I64(f); }
  Result<double> F64(std::string_view f) { return r_.F64(f); }
  Result<float> F32(std::string_view f) {
    ASSIGN_OR_RETURN(uint32_t v, r_.U32(f));
    return std::bit_cast<float>(v);
  }
  Result<std::string> Str(std::string_view f, uint32_t cap) { return r_.Str(f, cap); }
  // A count under `cap` whose elements (at least `min_bytes` each) fit in what is left, so
  // that a lying count allocates nothing.
  Result<uint32_t> Count(std::string_view f, uint32_t cap, size_t min_bytes) {
    ASSIGN_OR_RETURN(uint32_t n, r_.Count(f, cap));
    if (static_cast<uint64_t>(n) * min_bytes > r_.remaining())
      return InvalidArgument(std::string(f) + ": count " + std::to_string(n) +
                             " runs past the end of the message (" +
                             std::to_string(r_.remaining()) + " bytes left)");
    return n;
  }
  Result<std::vector<int32_t>> Ids(std::string_view f, uint32_t cap) {
    ASSIGN_OR_RETURN(uint32_t n, Count(f, cap, 4));
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) {
      ASSIGN_OR_RETURN(id, I32(f));
    }
    return ids;
  }
  // Starts a message: magic and version.
  Status Header(uint32_t magic, std::string_view what) {
    ASSIGN_OR_RETURN(uint32_t m, r_.U32(what));
    if (m != magic)
      return InvalidArgument(std::string(what) + ": not an encoded " + std::string(what));
    ASSIGN_OR_RETURN(uint8_t v, r_.U8(what));
    if (v != kLlmContractVersion)
      return InvalidArgument(std::string(what) + ": version " + std::to_string(v) + ", expected " +
                             std::to_string(kLlmContractVersion));
    return Status::Ok();
  }
  Status End(std::string_view what) const { return r_.ExpectEnd(what); }

 private:
  WireReader r_;
};

template <typename T>
Result<std::optional<T>> Optional(In& in, std::string_view f,
                                  Result<T> (In::*get)(std::string_view)) {
  ASSIGN_OR_RETURN(bool present, in.Bool(f));
  if (!present) return std::optional<T>();
  ASSIGN_OR_RETURN(T v, (in.*get)(f));
  return std::optional<T>(std::move(v));
}

Result<std::optional<std::string>> OptionalStr(In& in, std::string_view f, uint32_t cap) {
  ASSIGN_OR_RETURN(bool present, in.Bool(f));
  if (!present) return std::optional<std::string>();
  ASSIGN_OR_RETURN(std::string s, in.Str(f, cap));
  return std::optional<std::string>(std::move(s));
}

Status GetMessageToolFields(In& in, ChatMessage& m) {
  // A call is at least its three lengths.
  ASSIGN_OR_RETURN(uint32_t n, in.Count("tool calls", kMaxToolCallsPerMessage, 12));
  m.tool_calls.resize(n);
  for (ToolCall& c : m.tool_calls) {
    ASSIGN_OR_RETURN(c.id, in.Str("tool call id", kMaxLlmShortBytes));
    ASSIGN_OR_RETURN(c.name, in.Str("tool call name", kMaxToolNameBytes));
    ASSIGN_OR_RETURN(c.arguments, in.Str("tool call arguments", kMaxLlmTextBytes));
  }
  ASSIGN_OR_RETURN(m.tool_call_id, OptionalStr(in, "tool_call_id", kMaxLlmShortBytes));
  return Status::Ok();
}

Status GetTools(In& in, LlmRequest& r) {
  std::vector<ToolDefinition>& tools = r.tools;
  ToolChoice& choice = r.tool_choice;
  // A tool is at least its name's length and three presence bytes.
  ASSIGN_OR_RETURN(uint32_t n, in.Count("tools", kMaxTools, 7));
  tools.resize(n);
  for (ToolDefinition& t : tools) {
    ASSIGN_OR_RETURN(t.name, in.Str("tool name", kMaxToolNameBytes));
    ASSIGN_OR_RETURN(t.description, OptionalStr(in, "tool description", kMaxLlmTextBytes));
    ASSIGN_OR_RETURN(t.parameters, OptionalStr(in, "tool parameters", kMaxStructuredOutputBytes));
    ASSIGN_OR_RETURN(t.strict, Optional<bool>(in, "tool strict", &In::Bool));
  }
  ASSIGN_OR_RETURN(uint8_t kind, in.U8("tool_choice"));
  if (kind > static_cast<uint8_t>(ToolChoice::Kind::kFunction))
    return InvalidArgument("tool_choice: " + std::to_string(kind) + " is not a tool choice");
  choice.kind = static_cast<ToolChoice::Kind>(kind);
  ASSIGN_OR_RETURN(choice.function, in.Str("tool_choice function", kMaxToolNameBytes));
  ASSIGN_OR_RETURN(r.parallel_tool_calls, in.Bool("parallel_tool_calls"));
  return Status::Ok();
}

Result<Prompt> GetPrompt(In& in) {
  Prompt p;
  ASSIGN_OR_RETURN(uint8_t kind, in.U8("prompt kind"));
  if (kind > static_cast<uint8_t>(Prompt::Kind::kChat))
    return InvalidArgument("prompt kind: " + std::to_string(kind) + " is not a prompt kind");
  p.kind = static_cast<Prompt::Kind>(kind);
  ASSIGN_OR_RETURN(p.text, in.Str("prompt text", kMaxLlmTextBytes));
  ASSIGN_OR_RETURN(p.token_ids, in.Ids("prompt token ids", kMaxLlmTokenIds));
  // A message is at least its role's length, three presence bytes and a call count.
  ASSIGN_OR_RETURN(uint32_t n, in.Count("chat messages", kMaxLlmChatMessages, 11));
  p.messages.resize(n);
  for (ChatMessage& m : p.messages) {
    ASSIGN_OR_RETURN(m.role, in.Str("chat message role", kMaxLlmShortBytes));
    ASSIGN_OR_RETURN(m.content, OptionalStr(in, "chat message content", kMaxLlmTextBytes));
    ASSIGN_OR_RETURN(m.name, OptionalStr(in, "chat message name", kMaxLlmShortBytes));
    RETURN_IF_ERROR(GetMessageToolFields(in, m));
  }
  ASSIGN_OR_RETURN(p.add_generation_prompt, in.Bool("add_generation_prompt"));
  ASSIGN_OR_RETURN(p.chat_template_kwargs,
                   in.Str("chat_template_kwargs", kMaxChatTemplateKwargsBytes));
  return p;
}

Result<SamplingParameters> GetSampling(In& in) {
  SamplingParameters s;
  ASSIGN_OR_RETURN(s.n, in.I32("n"));
  ASSIGN_OR_RETURN(s.temperature, in.F64("temperature"));
  ASSIGN_OR_RETURN(s.top_p, in.F64("top_p"));
  ASSIGN_OR_RETURN(s.top_k, in.I32("top_k"));
  ASSIGN_OR_RETURN(s.min_p, in.F64("min_p"));
  ASSIGN_OR_RETURN(s.repetition_penalty, in.F64("repetition_penalty"));
  ASSIGN_OR_RETURN(s.presence_penalty, in.F64("presence_penalty"));
  ASSIGN_OR_RETURN(s.frequency_penalty, in.F64("frequency_penalty"));
  ASSIGN_OR_RETURN(s.seed, Optional<int64_t>(in, "seed", &In::I64));
  ASSIGN_OR_RETURN(s.max_tokens, Optional<int32_t>(in, "max_tokens", &In::I32));
  ASSIGN_OR_RETURN(s.min_tokens, in.I32("min_tokens"));
  ASSIGN_OR_RETURN(uint32_t stops, in.Count("stop", kMaxStopStrings, 4));
  s.stop.resize(stops);
  for (std::string& stop : s.stop) {
    ASSIGN_OR_RETURN(stop, in.Str("stop string", kMaxStopStringBytes));
  }
  ASSIGN_OR_RETURN(s.stop_token_ids, in.Ids("stop_token_ids", kMaxStopTokenIds));
  ASSIGN_OR_RETURN(s.ignore_eos, in.Bool("ignore_eos"));
  ASSIGN_OR_RETURN(uint32_t biases, in.Count("logit_bias", kMaxLogitBias, 12));
  s.logit_bias.resize(biases);
  for (auto& [id, bias] : s.logit_bias) {
    ASSIGN_OR_RETURN(id, in.I32("logit_bias token"));
    ASSIGN_OR_RETURN(bias, in.F64("logit_bias bias"));
  }
  ASSIGN_OR_RETURN(s.include_stop_str_in_output, in.Bool("include_stop_str_in_output"));
  ASSIGN_OR_RETURN(s.skip_special_tokens, in.Bool("skip_special_tokens"));
  ASSIGN_OR_RETURN(s.logprobs, Optional<int32_t>(in, "logprobs", &In::I32));
  ASSIGN_OR_RETURN(bool structured, in.Bool("structured output"));
  if (structured) {
    StructuredOutput& c = s.structured_output.emplace();
    ASSIGN_OR_RETURN(uint8_t kind, in.U8("structured output kind"));
    if (kind > static_cast<uint8_t>(StructuredOutput::Kind::kGrammar))
      return InvalidArgument("structured output kind: " + std::to_string(kind) +
                             " is not a structured-output kind");
    c.kind = static_cast<StructuredOutput::Kind>(kind);
    ASSIGN_OR_RETURN(c.text, in.Str("structured output", kMaxStructuredOutputBytes));
  }
  return s;
}

Result<OutputOptions> GetOutputOptions(In& in) {
  OutputOptions f;
  for (bool* b : {&f.stream, &f.exclude_input_in_output, &f.return_finish_reason,
                  &f.return_cumulative_logprob, &f.return_logprobs, &f.return_num_input_tokens,
                  &f.return_num_output_tokens, &f.typed_responses, &f.check_context}) {
    ASSIGN_OR_RETURN(*b, in.Bool("output options"));
  }
  return f;
}

Result<TokenLogprob> GetToken(In& in) {
  TokenLogprob t;
  ASSIGN_OR_RETURN(t.token_id, in.I32("logprob token id"));
  ASSIGN_OR_RETURN(t.token, in.Str("logprob token", kMaxLlmShortBytes));
  ASSIGN_OR_RETURN(t.bytes, in.Str("logprob bytes", kMaxLlmShortBytes));
  ASSIGN_OR_RETURN(t.logprob, in.F32("logprob"));
  return t;
}

constexpr size_t kMinTokenBytes = 16;  // id, two lengths, the logprob

}  // namespace

Result<std::string> EncodeLlmRequest(const LlmRequest& r) {
  Out o;
  o.U32(kLlmRequestMagic);
  o.U8(kLlmContractVersion);
  o.U8(static_cast<uint8_t>(r.task));
  PutPrompt(o, r.prompt);
  PutSampling(o, r.sampling);
  PutOutputOptions(o, r.output);
  o.Bool(r.add_special_tokens.has_value());
  if (r.add_special_tokens) o.Bool(*r.add_special_tokens);
  PutTools(o, r);
  return o.Finish();
}

Result<LlmRequest> DecodeLlmRequest(std::string_view bytes) {
  In in(bytes);
  RETURN_IF_ERROR(in.Header(kLlmRequestMagic, "LLM request"));
  LlmRequest r;
  ASSIGN_OR_RETURN(uint8_t task, in.U8("task"));
  if (task > static_cast<uint8_t>(Task::kDetokenize))
    return InvalidArgument("task: " + std::to_string(task) + " is not a task");
  r.task = static_cast<Task>(task);
  ASSIGN_OR_RETURN(r.prompt, GetPrompt(in));
  ASSIGN_OR_RETURN(r.sampling, GetSampling(in));
  ASSIGN_OR_RETURN(r.output, GetOutputOptions(in));
  ASSIGN_OR_RETURN(r.add_special_tokens, Optional<bool>(in, "add_special_tokens", &In::Bool));
  RETURN_IF_ERROR(GetTools(in, r));
  RETURN_IF_ERROR(in.End("LLM request"));
  return r;
}

Result<std::string> EncodeLlmOutput(const LlmOutput& out) {
  Out o;
  o.U32(kLlmOutputMagic);
  o.U8(kLlmContractVersion);
  o.I32(out.index);
  o.Str("output text", out.text, kMaxLlmTextBytes);
  o.Ids("output token ids", out.token_ids, kMaxLlmTokenIds);
  o.U8(static_cast<uint8_t>(out.finish_reason));
  o.F64(out.cumulative_logprob);
  if (o.Count("logprobs", out.logprobs.size(), kMaxLlmLogprobPositions)) {
    for (const PositionLogprobs& p : out.logprobs) {
      PutToken(o, p.chosen);
      if (o.Count("top logprobs", p.top.size(), kMaxLogprobs))
        for (const TokenLogprob& t : p.top) PutToken(o, t);
    }
  }
  o.U32(out.num_prompt_tokens);
  o.U32(out.num_output_tokens);
  o.U32(out.max_model_len);
  if (o.Count("tool call deltas", out.tool_calls.size(), kMaxLlmToolCallDeltas)) {
    for (const ToolCallDelta& d : out.tool_calls) {
      o.I32(d.index);
      o.Str("tool call delta name", d.name, kMaxToolNameBytes);
      o.Str("tool call delta arguments", d.arguments, kMaxLlmTextBytes);
      o.Str("tool call delta id", d.id, kMaxLlmShortBytes);
    }
  }
  o.Str("output reasoning", out.reasoning, kMaxLlmTextBytes);
  o.Bool(out.has_reasoning);
  return o.Finish();
}

Result<LlmOutput> DecodeLlmOutput(std::string_view bytes) {
  In in(bytes);
  RETURN_IF_ERROR(in.Header(kLlmOutputMagic, "LLM output"));
  LlmOutput out;
  ASSIGN_OR_RETURN(out.index, in.I32("index"));
  ASSIGN_OR_RETURN(out.text, in.Str("output text", kMaxLlmTextBytes));
  ASSIGN_OR_RETURN(out.token_ids, in.Ids("output token ids", kMaxLlmTokenIds));
  ASSIGN_OR_RETURN(uint8_t finish, in.U8("finish reason"));
  if (finish > static_cast<uint8_t>(FinishReason::kToolCalls))
    return InvalidArgument("finish reason: " + std::to_string(finish) + " is not a finish reason");
  out.finish_reason = static_cast<FinishReason>(finish);
  ASSIGN_OR_RETURN(out.cumulative_logprob, in.F64("cumulative logprob"));
  ASSIGN_OR_RETURN(uint32_t positions,
                   in.Count("logprobs", kMaxLlmLogprobPositions, kMinTokenBytes + 4));
  out.logprobs.resize(positions);
  for (PositionLogprobs& p : out.logprobs) {
    ASSIGN_OR_RETURN(p.chosen, GetToken(in));
    ASSIGN_OR_RETURN(uint32_t top, in.Count("top logprobs", kMaxLogprobs, kMinTokenBytes));
    p.top.resize(top);
    for (TokenLogprob& t : p.top) {
      ASSIGN_OR_RETURN(t, GetToken(in));
    }
  }
  ASSIGN_OR_RETURN(out.num_prompt_tokens, in.U32("num_prompt_tokens"));
  ASSIGN_OR_RETURN(out.num_output_tokens, in.U32("num_output_tokens"));
  ASSIGN_OR_RETURN(out.max_model_len, in.U32("max_model_len"));
  // A delta is at least its index and three lengths.
  ASSIGN_OR_RETURN(uint32_t deltas, in.Count("tool call deltas", kMaxLlmToolCallDeltas, 16));
  out.tool_calls.resize(deltas);
  for (ToolCallDelta& d : out.tool_calls) {
    ASSIGN_OR_RETURN(d.index, in.I32("tool call delta index"));
    if (d.index < 0 || static_cast<uint32_t>(d.index) >= kMaxLlmToolCallDeltas)
      return InvalidArgument("tool call delta index: " + std::to_string(d.index) +
                             " is out of range");
    ASSIGN_OR_RETURN(d.name, in.Str("tool call delta name", kMaxToolNameBytes));
    ASSIGN_OR_RETURN(d.arguments, in.Str("tool call delta arguments", kMaxLlmTextBytes));
    ASSIGN_OR_RETURN(d.id, in.Str("tool call delta id", kMaxLlmShortBytes));
  }
  ASSIGN_OR_RETURN(out.reasoning, in.Str("output reasoning", kMaxLlmTextBytes));
  ASSIGN_OR_RETURN(out.has_reasoning, in.Bool("has_reasoning"));
  RETURN_IF_ERROR(in.End("LLM output"));
  return out;
}

}  // namespace sluice::ipc

#include "frontend/openai/completion_assembler.h"

#include <algorithm>
#include <utility>

#include "frontend/http/http_status.h"
#include "frontend/http/json_util.h"

namespace sluice::openai {

using nlohmann::json;

size_t CodePoints(std::string_view s) {
  auto starts_a_character = [](char ch) { return (static_cast<unsigned char>(ch) & 0xC0) != 0x80; };
  return static_cast<size_t>(std::count_if(s.begin(), s.end(), starts_a_character));
}

namespace {

json Bytes(const std::string& bytes) {
  json out = json::array();
  for (unsigned char c : bytes) out.push_back(c);
  return out;
}

std::string Event(const json& j) {
  return "data: " + http::DumpJson(j) + "\n\n";
}

// vLLM's reasoning fields of a chat message or delta: `reasoning`, and `reasoning_content`,
// the name it had before, which vLLM still writes (a copy).
void PutReasoning(json& message, const std::string& reasoning) {
  message["reasoning"] = reasoning;
  message["reasoning_content"] = reasoning;
}

}  // namespace

CompletionAssembler::CompletionAssembler(const OpenAIRequest& request, std::string id,
                                         int64_t created)
    : r_(request), id_(std::move(id)), created_(created), choices_(NumChoices(request)) {
  if (r_.echo) {
    for (size_t i = 0; i < choices_.size(); ++i)
      choices_[i].text_offset = CodePoints(PromptOf(r_, static_cast<int>(i)));
  }
}

std::optional<std::string> CompletionAssembler::Add(int index, const llm_contract::LlmOutput& out) {
  Choice& c = choices_.at(static_cast<size_t>(index));
  c.prompt_tokens = std::max(c.prompt_tokens, out.num_prompt_tokens);
  c.completion_tokens = std::max(c.completion_tokens, out.num_output_tokens);
  const std::string_view finish = llm_contract::FinishReasonName(out.finish_reason);
  if (!finish.empty()) c.finish_reason = finish == "abort" ? "stop" : std::string(finish);
  const std::vector<json> tool_calls = c.tool_calls.Add(out.tool_calls, r_.parallel_tool_calls);
  // As vLLM: a step whose text a parser holds back (what may begin a tool call's tag or a
  // reasoning section's) sends no chunk.
  const bool parsing =
      r_.tool_choice.kind != llm_contract::ToolChoice::Kind::kNone || out.has_reasoning;
  const bool held_back = parsing && c.started && out.text.empty() && out.reasoning.empty() &&
                         tool_calls.empty() && finish.empty() && out.logprobs.empty();
  std::optional<std::string> chunk;
  if (r_.stream && !held_back) chunk = Chunk(index, c, out, tool_calls);
  c.text += out.text;
  c.reasoning += out.reasoning;
  c.has_reasoning = c.has_reasoning || out.has_reasoning;
  if (r_.sampling.logprobs)
    c.logprobs.insert(c.logprobs.end(), out.logprobs.begin(), out.logprobs.end());
  return chunk;
}

json CompletionAssembler::ChunkBase() const {
  return json{{"id", id_},
              {"object", r_.chat ? "chat.completion.chunk" : "text_completion"},
              {"created", created_},
              {"model", r_.model}};
}

std::string CompletionAssembler::ChoiceEvent(json choice) const {
  json chunk = ChunkBase();
  chunk["choices"] = json::array({std::move(choice)});
  if (r_.include_usage) chunk["usage"] = r_.continuous_usage ? Usage() : json(nullptr);
  return Event(chunk);
}

std::string CompletionAssembler::Chunk(int index, Choice& c, const llm_contract::LlmOutput& out,
                                       const std::vector<json>& tool_calls) {
  const bool logprobs = r_.sampling.logprobs.has_value();
  json choice = {{"index", index}};
  if (r_.chat) {
    json delta = json::object();
    if (!c.started) delta["role"] = "assistant";
    if (!out.text.empty() || !c.started) delta["content"] = out.text;
    if (!out.reasoning.empty() && r_.include_reasoning) PutReasoning(delta, out.reasoning);
    choice["delta"] = delta;
    choice["logprobs"] = logprobs ? ChatLogprobs(out.logprobs) : json(nullptr);
  } else {
    choice["text"] = r_.echo && !c.started ? PromptOf(r_, index) + out.text : out.text;
    choice["logprobs"] = logprobs ? CompletionLogprobs(out.logprobs, c.text_offset) : json(nullptr);
  }
  const bool first = !c.started;
  c.started = true;
  const json finish = c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason);
  if (tool_calls.empty()) {
    choice["finish_reason"] = finish;
    return ChoiceEvent(std::move(choice));
  }
  // As OpenAI streams calls: the content first (or the first chunk's role), then a chunk per
  // piece of a call; the last one carries the finish reason, the first one the logprobs.
  json positions = choice["logprobs"];
  std::string events;
  if (first || !out.text.empty() || (!out.reasoning.empty() && r_.include_reasoning)) {
    choice["finish_reason"] = nullptr;
    events += ChoiceEvent(std::move(choice));
    positions = nullptr;
  }
  for (size_t k = 0; k < tool_calls.size(); ++k) {
    events += ChoiceEvent({{"index", index},
                           {"delta", {{"tool_calls", json::array({tool_calls[k]})}}},
                           {"logprobs", std::exchange(positions, nullptr)},
                           {"finish_reason", k + 1 == tool_calls.size() ? finish : json(nullptr)}});
  }
  return events;
}

json CompletionAssembler::ChatLogprobs(
    const std::vector<llm_contract::PositionLogprobs>& positions) const {
  json content = json::array();
  for (const auto& p : positions) {
    json top = json::array();
    for (const auto& t : p.top)
      top.push_back({{"token", t.token}, {"logprob", t.logprob}, {"bytes", Bytes(t.bytes)}});
    content.push_back({{"token", p.chosen.token},
                       {"logprob", p.chosen.logprob},
                       {"bytes", Bytes(p.chosen.bytes)},
                       {"top_logprobs", top}});
  }
  return json{{"content", content}};
}

json CompletionAssembler::CompletionLogprobs(
    const std::vector<llm_contract::PositionLogprobs>& positions, size_t& text_offset) const {
  json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
  for (const auto& p : positions) {
    tokens.push_back(p.chosen.token);
    lps.push_back(p.chosen.logprob);
    json top = json::object();
    for (const auto& t : p.top) top[t.token] = t.logprob;
    tops.push_back(top);
    offsets.push_back(text_offset);
    text_offset += CodePoints(p.chosen.token);
  }
  return json{{"tokens", tokens},
              {"token_logprobs", lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
}

json CompletionAssembler::Usage() const {
  uint32_t prompt = 0, completion = 0;
  for (size_t first = 0; first < choices_.size(); first += r_.n) {
    uint32_t tokens = 0;
    for (size_t i = first; i < first + r_.n && i < choices_.size(); ++i) {
      tokens = std::max(tokens, choices_[i].prompt_tokens);
    }
    prompt += tokens;
  }
  for (const auto& c : choices_) completion += c.completion_tokens;
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
}

std::string CompletionAssembler::StreamEnd(const std::optional<Status>& failed) const {
  std::string out;
  if (failed) {
    const int code = http::HttpStatusFromCode(failed->code());
    out += Event(ErrorBody(failed->message(), code));
  } else if (r_.include_usage) {
    json chunk = ChunkBase();
    chunk["choices"] = json::array();
    chunk["usage"] = Usage();
    out += Event(chunk);
  }
  return out + "data: [DONE]\n\n";
}

json CompletionAssembler::Body() const {
  const bool logprobs = r_.sampling.logprobs.has_value();
  json choices = json::array();
  for (size_t i = 0; i < choices_.size(); ++i) {
    const Choice& c = choices_[i];
    json choice = {{"index", i},
                   {"finish_reason", c.finish_reason.empty() ? "stop" : c.finish_reason}};
    if (r_.chat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
      if (!c.tool_calls.empty()) {
        // The text before the calls, or null (OpenAI's content of a message that only calls).
        if (c.text.empty()) choice["message"]["content"] = nullptr;
        choice["message"]["tool_calls"] = c.tool_calls.MessageToolCalls();
      }
      // As vLLM: beside a reasoning section, no content is null, not "".
      if (c.has_reasoning && c.text.empty()) choice["message"]["content"] = nullptr;
      if (c.has_reasoning && r_.include_reasoning) PutReasoning(choice["message"], c.reasoning);
      choice["logprobs"] = logprobs ? ChatLogprobs(c.logprobs) : json(nullptr);
    } else {
      const std::string& prompt = PromptOf(r_, static_cast<int>(i));
      choice["text"] = r_.echo ? prompt + c.text : c.text;
      size_t text_offset = c.text_offset;
      choice["logprobs"] = logprobs ? CompletionLogprobs(c.logprobs, text_offset) : json(nullptr);
    }
    choices.push_back(std::move(choice));
  }
  return json{{"id", id_},           {"object", r_.chat ? "chat.completion" : "text_completion"},
              {"created", created_}, {"model", r_.model},
              {"choices", choices},  {"usage", Usage()}};
}

}  // namespace sluice::openai

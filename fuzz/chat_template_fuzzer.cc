// Chat templates (backends/llm/chat_template/chat_template.h), the sandboxed Jinja subset.
// An input that is a JSON array is a conversation, rendered by the real templates of the
// fixtures (Qwen2/2.5/3, Llama 3/3.1, Mistral), as the OpenAI chat route passes client
// messages; any other input is a template source (a model folder's tokenizer_config.json),
// parsed and rendered with a fixed conversation. Renders run under small step and output
// limits, so that each input stays cheap; the limits' checks are the same.

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backends/llm/chat_template/chat_template.h"
#include "fuzz_check.h"

namespace {

using sluice::llm::ChatTemplate;
using sluice::llm::ChatTemplateLimits;

ChatTemplateLimits Limits() {
  ChatTemplateLimits limits;
  limits.render.max_steps = 20000;
  limits.render.max_output_bytes = 64u << 10;
  return limits;
}

std::vector<std::unique_ptr<ChatTemplate>> FixtureTemplates() {
  std::vector<std::unique_ptr<ChatTemplate>> out;
  for (const char* name : {"qwen2", "qwen2_5", "qwen3", "llama3", "llama3_1", "mistral", "mistral_v0_3"}) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR "/tests/fixtures/chat_templates/") + name + ".jinja");
    std::stringstream source;
    source << in.rdbuf();
    auto t = ChatTemplate::Parse(source.str(), Limits());
    if (!t.ok()) {
      std::fprintf(stderr, "cannot parse the fixture template %s: %s\n", name, t.status().message().c_str());
      std::abort();
    }
    out.push_back(std::move(*t));
  }
  return out;
}

const nlohmann::ordered_json& Extra() {
  static const auto extra = nlohmann::ordered_json::parse(
      R"({"bos_token": "<s>", "eos_token": "</s>", "date_string": "26 Jul 2024", "enable_thinking": false})");
  return extra;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string_view input = fuzz::AsText(data, size);
  if (!input.empty() && input.front() == '[') {
    auto messages = nlohmann::ordered_json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (messages.is_discarded() || !messages.is_array()) return 0;
    static const auto templates = FixtureTemplates();
    for (const auto& t : templates) {
      for (bool generation_prompt : {false, true}) (void)t->Render(messages, generation_prompt, Extra());
    }
    return 0;
  }
  auto parsed = ChatTemplate::Parse(input, Limits());
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "an error without a message");
    return 0;
  }
  static const auto conversation = nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Hi <b>&amp;</b> ünï"},
    {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
      "function": {"name": "f", "arguments": {"x": 1, "y": [true, null, 2.5]}}}]},
    {"role": "tool", "content": "42"},
    {"role": "user", "content": [{"type": "text", "text": "again"}]}])");
  for (bool generation_prompt : {false, true}) {
    auto out = (*parsed)->Render(conversation, generation_prompt, Extra());
    if (out.ok()) FUZZ_CHECK(out->size() <= Limits().render.max_output_bytes, "output past its limit");
  }
  return 0;
}

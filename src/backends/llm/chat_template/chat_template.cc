#include "backends/llm/chat_template/chat_template.h"

#include "backends/llm/chat_template/jinja_parser.h"

namespace sluice::llm {
namespace {

// transformers' apply_chat_template: drops the null-valued keys of each message, then
// render_jinja_template's _alias_reasoning_fields: {"thinking": r, **message,
// "reasoning_content": r} (ordered_json keeps an existing key where it is).
nlohmann::ordered_json PrepareMessages(const nlohmann::ordered_json& messages) {
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& m : messages) {
    if (!m.is_object()) {
      out.push_back(m);
      continue;
    }
    nlohmann::ordered_json kept = nlohmann::ordered_json::object();
    for (const auto& [k, v] : m.items()) {
      if (!v.is_null()) kept[k] = v;
    }
    const nlohmann::ordered_json* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
      if (kept.contains(key)) {
        reasoning = &kept[key];
        break;
      }
    }
    if (reasoning == nullptr) {
      out.push_back(std::move(kept));
      continue;
    }
    nlohmann::ordered_json aliased = {{"thinking", *reasoning}};
    for (const auto& [k, v] : kept.items()) aliased[k] = v;
    aliased["reasoning_content"] = *reasoning;
    out.push_back(std::move(aliased));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<ChatTemplate>> ChatTemplate::Parse(std::string_view source,
                                                          ChatTemplateLimits limits) {
  if (source.size() > limits.max_source_bytes) {
    return InvalidArgument("chat template of " + std::to_string(source.size()) +
                           " bytes exceeds the limit of " +
                           std::to_string(limits.max_source_bytes));
  }
  std::unique_ptr<ChatTemplate> t(new ChatTemplate());
  ASSIGN_OR_RETURN(t->body_, jinja::Parse(source));
  t->limits_ = limits;
  return t;
}

Result<std::string> ChatTemplate::Render(const nlohmann::ordered_json& messages,
                                         bool add_generation_prompt,
                                         const nlohmann::ordered_json& extra) const {
  if (!messages.is_array()) return InvalidArgument("chat template: messages must be an array");
  if (!extra.is_object())
    return InvalidArgument("chat template: extra variables must be an object");
  jinja::Value::Dict vars;
  ASSIGN_OR_RETURN(jinja::Value m, jinja::Value::FromJson(PrepareMessages(messages)));
  vars.emplace_back("messages", std::move(m));
  vars.emplace_back("add_generation_prompt", jinja::Value::Bool(add_generation_prompt));
  if (!extra.contains("tools")) vars.emplace_back("tools", jinja::Value::None());
  for (const auto& [k, v] : extra.items()) {
    ASSIGN_OR_RETURN(jinja::Value x, jinja::Value::FromJson(v));
    vars.emplace_back(k, std::move(x));
  }
  return jinja::Render(body_, vars, limits_.render);
}

}  // namespace sluice::llm

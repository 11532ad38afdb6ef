#include "frontend/openai/tokenize_request.h"

#include <algorithm>
#include <initializer_list>
#include <string_view>

#include "common/json_fields.h"
#include "common/json_numerals.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/tool_fields.h"

namespace sluice::openai {
namespace {

namespace jf = json_fields;
using jf::FieldError;
using nlohmann::json;

// Only these keys: a field Sluice would not honour is named, not ignored.
Status OnlyKnownFields(const json& body, std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      return Unsupported("field '" + key.substr(0, 64) + "' is not supported");
    }
  }
  return Status::Ok();
}

Result<std::string> OptionalModel(const json& body) {
  if (!body.contains("model") || body["model"].is_null()) return std::string();
  if (!body["model"].is_string()) return FieldError("model", "must be a string");
  return body["model"].get<std::string>();
}

// Messages, and what the chat template reads beside them: tools (read as chat completions
// read them) and chat_template_kwargs.
Status ParseChat(const json& body, const nlohmann::ordered_json* in_order, TokenizeRequest& r) {
  ASSIGN_OR_RETURN(r.messages, ParseChatMessages(body));
  ASSIGN_OR_RETURN(ToolFields tools, ParseToolFields(body, in_order));
  r.tools = std::move(tools.tools);
  ASSIGN_OR_RETURN(r.chat_template_kwargs, ParseChatTemplateKwargs(body, in_order));
  return Status::Ok();
}

// Token `i` as the client wrote it: from `in_order` where it is there, since nlohmann reads an
// integer past uint64 as a double (1.2345678901234568e+29).
std::string AsWritten(const json& id, const nlohmann::ordered_json* in_order, size_t i) {
  if (in_order != nullptr) {
    auto ids = in_order->find("tokens");
    if (ids != in_order->end() && ids->is_array() && i < ids->size())
      return DumpKeepingNumerals((*ids)[i]);
  }
  return id.dump();
}

}  // namespace

Result<TokenizeRequest> ParseTokenizeRequest(const json& body,
                                             const nlohmann::ordered_json* in_order) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(OnlyKnownFields(
      body, {"model", "prompt", "messages", "tools", "chat_template_kwargs", "add_special_tokens",
             "add_generation_prompt", "return_token_strs", "continue_final_message"}));
  TokenizeRequest r;
  ASSIGN_OR_RETURN(r.model, OptionalModel(body));
  const bool has_prompt = body.contains("prompt"), has_messages = body.contains("messages");
  if (has_prompt == has_messages) return InvalidArgument("give either 'prompt' or 'messages'");
  if (has_prompt) {
    if (!body["prompt"].is_string()) return FieldError("prompt", "must be a string");
    r.prompt = body["prompt"].get<std::string>();
    for (const char* chat_only : {"tools", "chat_template_kwargs"}) {
      if (jf::Has(body, chat_only)) return FieldError(chat_only, "needs 'messages', not 'prompt'");
    }
  } else {
    RETURN_IF_ERROR(ParseChat(body, in_order, r));
  }
  ASSIGN_OR_RETURN(r.add_special_tokens, jf::OptionalBoolean(body, "add_special_tokens"));
  ASSIGN_OR_RETURN(std::optional<bool> generation_prompt,
                   jf::OptionalBoolean(body, "add_generation_prompt"));
  r.add_generation_prompt = generation_prompt.value_or(true);
  ASSIGN_OR_RETURN(std::optional<bool> token_strs, jf::OptionalBoolean(body, "return_token_strs"));
  if (token_strs.value_or(false)) return Unsupported("'return_token_strs' is not supported");
  ASSIGN_OR_RETURN(std::optional<bool> continue_final,
                   jf::OptionalBoolean(body, "continue_final_message"));
  if (continue_final.value_or(false))
    return Unsupported("'continue_final_message' is not supported");
  return r;
}

Result<InferRequest> BuildTokenizeRequest(const TokenizeRequest& r,
                                          const std::string& repository_model) {
  llm_contract::LlmRequest c;
  c.task = llm_contract::Task::kTokenize;
  c.output.typed_responses = true;
  c.add_special_tokens = r.add_special_tokens;
  if (r.prompt) {
    c.prompt.text = *r.prompt;
  } else {
    c.prompt.kind = llm_contract::Prompt::Kind::kChat;
    c.prompt.messages = r.messages;
    c.prompt.add_generation_prompt = r.add_generation_prompt;
    c.prompt.chat_template_kwargs = r.chat_template_kwargs;
    c.tools = r.tools;  // rendered by the template; tool_choice stays "none": nothing is parsed
  }
  return BuildContractRequest(c, repository_model);
}

Result<DetokenizeRequest> ParseDetokenizeRequest(const json& body,
                                                 const nlohmann::ordered_json* in_order) {
  if (!body.is_object()) return InvalidArgument("the request body must be a JSON object");
  RETURN_IF_ERROR(OnlyKnownFields(body, {"model", "tokens"}));
  DetokenizeRequest r;
  ASSIGN_OR_RETURN(r.model, OptionalModel(body));
  if (!body.contains("tokens") || !body["tokens"].is_array())
    return FieldError("tokens", "is required (a list of token ids)");
  const json& ids = body["tokens"];
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!jf::IsTokenId(ids[i])) {
      return FieldError(
          "tokens", "holds " + AsWritten(ids[i], in_order, i).substr(0, 32) + ", not a token id");
    }
    r.tokens.push_back(static_cast<int32_t>(ids[i].get<int64_t>()));
  }
  return r;
}

Result<InferRequest> BuildDetokenizeRequest(const DetokenizeRequest& r,
                                            const std::string& repository_model) {
  llm_contract::LlmRequest c;
  c.task = llm_contract::Task::kDetokenize;
  c.output.typed_responses = true;
  c.prompt.kind = llm_contract::Prompt::Kind::kTokenIds;
  c.prompt.token_ids = r.tokens;
  return BuildContractRequest(c, repository_model);
}

}  // namespace sluice::openai

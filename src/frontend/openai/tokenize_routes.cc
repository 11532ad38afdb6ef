#include "frontend/openai/tokenize_routes.h"

#include <nlohmann/json.hpp>

#include "common/json_numerals.h"
#include "common/llm_protocol.h"
#include "frontend/http/json_util.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/openai_routes.h"
#include "frontend/openai/served_models.h"
#include "frontend/openai/tokenize_request.h"
#include "ipc/llm_contract_codec.h"

namespace sluice::openai {
namespace {

namespace proto = llm_protocol;
using nlohmann::json;

// Sends `request` and answers with render(final response) once it ends; an error (from the
// core or the backend) in OpenAI's shape.
void Forward(core::InferenceService& service, InferRequest request, std::shared_ptr<http::ResponseWriter> writer,
             std::function<Result<json>(const InferResponse&)> render) {
  auto last = std::make_shared<InferResponse>();  // events of one request arrive one at a time
  auto handle = service.Infer(std::move(request), [writer, render, last](ResponseEvent ev) {
    if (ev.has_response) *last = std::move(ev.response);
    if (!ev.final) return;
    if (!ev.status.ok()) return SendOpenAIError(*writer, ev.status);
    auto body = render(*last);
    if (!body.ok()) return SendOpenAIError(*writer, body.status());
    writer->SendJson(200, *body);
  });
  if (!handle.ok()) SendOpenAIError(*writer, handle.status());
}

Result<llm_contract::LlmOutput> TypedReply(const InferResponse& r) {
  const Tensor* t = FindTensor(r.outputs, proto::kLlmOutput);
  if (t == nullptr) return Internal("the model's reply lacks its output");
  return ipc::DecodeLlmOutput(t->data);
}

Result<json> TokenizeReply(const InferResponse& r) {
  ASSIGN_OR_RETURN(llm_contract::LlmOutput out, TypedReply(r));
  return json{{"count", out.token_ids.size()},
              {"max_model_len", out.max_model_len},
              {"tokens", out.token_ids},
              {"token_strs", nullptr}};
}

Result<json> DetokenizeReply(const InferResponse& r) {
  ASSIGN_OR_RETURN(llm_contract::LlmOutput out, TypedReply(r));
  return json{{"prompt", out.text}};
}

// The request's JSON body (bounded).
Result<json> ParseBody(const http::HttpRequest& r, const http::RequestLimits& limits) {
  return http::ParseJsonBounded(r.body, limits.max_json_depth);
}

// /tokenize's body; the tools and template kwargs that a chat template renders read again as
// chat completions read them (ReadBodyInOrder: in order, big integers as written).
Result<TokenizeRequest> ParseTokenizeBody(const http::HttpRequest& r,
                                          const http::RequestLimits& limits) {
  ASSIGN_OR_RETURN(json body, ParseBody(r, limits));
  const nlohmann::ordered_json in_order = ReadBodyInOrder(body, r.body);
  return ParseTokenizeRequest(body, in_order.is_object() ? &in_order : nullptr);
}

// /detokenize's body; the ids read again keeping their digits, which an error shows as written.
Result<DetokenizeRequest> ParseDetokenizeBody(const http::HttpRequest& r,
                                              const http::RequestLimits& limits) {
  ASSIGN_OR_RETURN(json body, ParseBody(r, limits));
  auto in_order = ParseJsonKeepingNumerals(r.body);  // the same text: its depth is bounded
  return ParseDetokenizeRequest(body, in_order.ok() ? &*in_order : nullptr);
}

}  // namespace

void RegisterTokenizeRoutes(http::Router& router, core::InferenceService& service, const http::RequestLimits& limits) {
  router.Add(
      "POST", "/tokenize",
      [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
        auto parsed = ParseTokenizeBody(r, limits);
        auto model = parsed.ok() ? ResolveServedModel(service, parsed->model) : parsed.status();
        if (!model.ok()) return SendOpenAIError(*w, model.status());
        auto request = BuildTokenizeRequest(*parsed, *model);
        if (!request.ok()) return SendOpenAIError(*w, request.status());
        Forward(service, std::move(request).value(), std::move(w), TokenizeReply);
      });
  router.Add(
      "POST", "/detokenize",
      [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
        auto parsed = ParseDetokenizeBody(r, limits);
        auto model = parsed.ok() ? ResolveServedModel(service, parsed->model) : parsed.status();
        if (!model.ok()) return SendOpenAIError(*w, model.status());
        if (parsed->tokens.empty()) return (void)w->SendJson(200, json{{"prompt", ""}});
        auto request = BuildDetokenizeRequest(*parsed, *model);
        if (!request.ok()) return SendOpenAIError(*w, request.status());
        Forward(service, std::move(request).value(), std::move(w), DetokenizeReply);
      });
  // Errors the router answers itself on these paths in OpenAI's shape too.
  for (const char* path : {"/tokenize/", "/detokenize/"}) {
    router.SetErrorRenderer(path, [](int status, const std::string& message) { return ErrorBody(message, status).dump(); });
  }
}

}  // namespace sluice::openai

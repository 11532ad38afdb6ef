#include "frontend/openai/tokenize_routes.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "common/llm_protocol.h"
#include "frontend/http/json_util.h"
#include "frontend/openai/openai_request.h"
#include "frontend/openai/openai_routes.h"
#include "frontend/openai/served_models.h"

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

Result<json> TokenizeReply(const InferResponse& r) {
  const Tensor* ids = FindTensor(r.outputs, proto::kTokenIdsOutput);
  auto len = r.parameters.find(std::string(proto::kMaxModelLenParameter));
  if (!ids || ids->datatype != DataType::kInt32 || ids->data.size() % sizeof(int32_t) != 0 || len == r.parameters.end() ||
      !std::holds_alternative<int64_t>(len->second)) {
    return Internal("the model's tokenize reply lacks its token ids or max_model_len");
  }
  std::vector<int32_t> tokens(ids->data.size() / sizeof(int32_t));
  if (!tokens.empty()) std::memcpy(tokens.data(), ids->data.data(), ids->data.size());
  return json{{"count", tokens.size()}, {"max_model_len", std::get<int64_t>(len->second)}, {"tokens", tokens},
              {"token_strs", nullptr}};
}

Result<json> DetokenizeReply(const InferResponse& r) {
  const Tensor* text = FindTensor(r.outputs, proto::kTextOutput);
  auto elements = text ? SplitBytesElements(text->data) : Result<std::vector<std::string_view>>(Internal(""));
  if (!elements.ok() || elements->size() != 1) return Internal("the model's detokenize reply lacks its text");
  return json{{"prompt", std::string((*elements)[0])}};
}

// The request's JSON body (bounded) through `parse`.
template <typename T>
Result<T> ParseBody(const http::HttpRequest& r, const http::RequestLimits& limits, Result<T> (*parse)(const json&)) {
  auto body = http::ParseJsonBounded(r.body, limits.max_json_depth);
  if (!body.ok()) return body.status();
  return parse(*body);
}

}  // namespace

void RegisterTokenizeRoutes(http::Router& router, core::InferenceService& service, const http::RequestLimits& limits) {
  router.Add("POST", "/tokenize", [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
    auto parsed = ParseBody(r, limits, ParseTokenizeRequest);
    auto model = parsed.ok() ? ResolveServedModel(service, parsed->model) : parsed.status();
    if (!model.ok()) return SendOpenAIError(*w, model.status());
    Forward(service, BuildTokenizeRequest(*parsed, *model), std::move(w), TokenizeReply);
  });
  router.Add("POST", "/detokenize", [&service, limits](const http::HttpRequest& r, std::shared_ptr<http::ResponseWriter> w) {
    auto parsed = ParseBody(r, limits, ParseDetokenizeRequest);
    auto model = parsed.ok() ? ResolveServedModel(service, parsed->model) : parsed.status();
    if (!model.ok()) return SendOpenAIError(*w, model.status());
    if (parsed->tokens.empty()) return (void)w->SendJson(200, json{{"prompt", ""}});
    Forward(service, BuildDetokenizeRequest(*parsed, *model), std::move(w), DetokenizeReply);
  });
  // Errors the router answers itself on these paths in OpenAI's shape too.
  for (const char* path : {"/tokenize/", "/detokenize/"}) {
    router.SetErrorRenderer(path, [](int status, const std::string& message) { return ErrorBody(message, status).dump(); });
  }
}

}  // namespace sluice::openai

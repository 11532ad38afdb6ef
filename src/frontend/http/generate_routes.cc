// Triton's generate extension: /generate (exactly one response) and /generate_stream
// (server-sent events, one `data: {json}\n\n` per response). JSON keys that name model
// inputs fill those inputs (types from the model metadata); "parameters" and every other key
// become request parameters. Registered by RegisterGenerateRoutes (kserve_routes.h).

#include <mutex>

#include "frontend/http/generate_request.h"
#include "frontend/http/http_status.h"
#include "frontend/http/infer_codec.h"
#include "frontend/http/json_util.h"
#include "frontend/http/kserve_routes.h"
#include "frontend/http/tensor_json.h"

namespace sluice::http {
namespace {

using nlohmann::json;

constexpr char kExactlyOneResponse[] = "generate expects model to produce exactly 1 response";

Result<InferRequest> BuildGenerateRequest(core::InferenceService& service, const HttpRequest& req,
                                          const RequestLimits& limits) {
  const std::string model(req.Param("model"));
  const std::string version(req.Param("version"));
  ASSIGN_OR_RETURN(int64_t version_number, ParseModelVersion(version));
  ASSIGN_OR_RETURN(core::ModelMetadata metadata, service.GetModelMetadata(model, version));
  ASSIGN_OR_RETURN(InferRequest out, ParseGenerateRequest(metadata, req.body, limits));
  out.model_name = model;
  out.model_version = version_number;
  return out;
}

// One response as the generate extension renders it: outputs flattened by name, a
// one-element tensor as a scalar.
Result<json> GenerateResponseToJson(const InferResponse& response) {
  json j = json::object();
  j["model_name"] = response.model_name;
  j["model_version"] = std::to_string(response.model_version);
  if (!response.id.empty()) j["id"] = response.id;
  for (const Tensor& t : response.outputs) {
    ASSIGN_OR_RETURN(json data, TensorToJsonArray(t));
    j[t.name] = data.size() == 1 ? data[0] : data;
  }
  return j;
}

void HandleGenerate(core::InferenceService& service, const RequestLimits& limits, const HttpRequest& req,
                    const std::shared_ptr<ResponseWriter>& w) {
  auto request = BuildGenerateRequest(service, req, limits);
  if (!request.ok()) return (void)w->SendError(request.status());
  struct Collected {
    std::vector<InferResponse> responses;  // touched by the sink only, then by the io thread
  };
  auto collected = std::make_shared<Collected>();
  auto sink = [w, collected](ResponseEvent event) {
    if (event.has_response && collected->responses.size() < 2) collected->responses.push_back(std::move(event.response));
    if (!event.final) return;
    w->Post([w, collected, status = std::move(event.status)] {
      if (!status.ok()) return (void)w->SendError(status);
      if (collected->responses.size() != 1) return (void)w->SendError(InvalidArgument(kExactlyOneResponse));
      auto j = GenerateResponseToJson(collected->responses.front());
      if (!j.ok()) return (void)w->SendError(Internal("invalid response from the model: " + j.status().message()));
      w->SendJson(200, *j);
    });
  };
  auto inflight = service.Infer(std::move(*request), std::move(sink));
  if (!inflight.ok()) return (void)w->SendError(inflight.status());
  w->OnDisconnect([handle = *inflight] { handle->Cancel(); });
}

std::string SseEvent(const std::string& json_text) { return "data: " + json_text + "\n\n"; }

void HandleGenerateStream(core::InferenceService& service, const RequestLimits& limits, const HttpRequest& req,
                          const std::shared_ptr<ResponseWriter>& w) {
  auto request = BuildGenerateRequest(service, req, limits);
  if (!request.ok()) return (void)w->SendError(request.status());
  // Events are posted in order onto the connection's strand, so `started` needs no lock.
  auto started = std::make_shared<bool>(false);
  auto sink = [w, started](ResponseEvent event) {
    w->Post([w, started, event = std::move(event)] {
      if (!*started) {
        if (!event.status.ok()) return (void)w->SendError(event.status);
        *started = true;
        w->StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
      }
      if (event.has_response) {
        auto j = GenerateResponseToJson(event.response);
        w->WriteChunk(SseEvent(j.ok() ? DumpJson(*j) : ErrorBody("invalid response from the model: " + j.status().message())));
      }
      if (!event.status.ok()) w->WriteChunk(SseEvent(ErrorBody(event.status.message())));
      if (event.final) w->EndStream();
    });
  };
  auto inflight = service.Infer(std::move(*request), std::move(sink));
  if (!inflight.ok()) return (void)w->SendError(inflight.status());
  w->OnDisconnect([handle = *inflight] { handle->Cancel(); });
}

}  // namespace

void RegisterGenerateRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits) {
  core::InferenceService* svc = &service;
  for (const std::string prefix : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    router.Add("POST", prefix + "/generate", [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleGenerate(*svc, limits, r, w);
    });
    router.Add("POST", prefix + "/generate_stream",
               [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
                 HandleGenerateStream(*svc, limits, r, w);
               });
  }
}

}  // namespace sluice::http

#include "frontend/http/kserve_routes.h"

#include <mutex>
#include <optional>

#include "core/repository_model_config.h"
#include "frontend/http/content_encoding.h"
#include "frontend/http/http_status.h"
#include "frontend/http/infer_codec.h"
#include "frontend/http/json_util.h"

namespace sluice::http {
namespace {

using nlohmann::json;

json TensorMetadataToJson(const core::TensorMetadata& t) {
  return json{{"name", t.name}, {"datatype", std::string(DataTypeName(t.datatype))}, {"shape", t.shape}};
}

json StatDurationToJson(const core::StatDuration& d) { return json{{"count", d.count}, {"ns", d.ns}}; }

// Triton's model_stats entry (statistics extension), plus Sluice's cancel count.
json ModelStatisticsToJson(const core::ModelStatistics& s) {
  json inference_stats = {
      {"success", StatDurationToJson(s.success)},
      {"fail", StatDurationToJson(s.fail)},
      {"queue", StatDurationToJson(s.queue)},
      {"compute_input", StatDurationToJson(s.compute_input)},
      {"compute_infer", StatDurationToJson(s.compute_infer)},
      {"compute_output", StatDurationToJson(s.compute_output)},
      {"cache_hit", json{{"count", 0}, {"ns", 0}}},
      {"cache_miss", json{{"count", 0}, {"ns", 0}}},
      {"cancel", json{{"count", s.cancel_count}, {"ns", 0}}},
  };
  return json{{"name", s.name},
              {"version", s.version},
              {"last_inference", s.last_inference_ms},
              {"inference_count", s.inference_count},
              {"execution_count", s.execution_count},
              {"pending_request_count", s.pending_count},
              {"inflight_request_count", s.inflight_count},
              {"inference_stats", std::move(inference_stats)},
              {"response_stats", json::object()},
              {"batch_stats", json::array()},
              {"memory_usage", json::array()}};
}

void SendEmpty(ResponseWriter& w, int status) { w.Send(status, "", ""); }

void HandleModelMetadata(core::InferenceService& service, const HttpRequest& req, ResponseWriter& w) {
  auto md = service.GetModelMetadata(std::string(req.Param("model")), std::string(req.Param("version")));
  if (!md.ok()) {
    w.SendError(md.status());
    return;
  }
  json inputs = json::array(), outputs = json::array();
  for (const auto& t : md->inputs) inputs.push_back(TensorMetadataToJson(t));
  for (const auto& t : md->outputs) outputs.push_back(TensorMetadataToJson(t));
  w.SendJson(200, json{{"name", md->name},
                       {"versions", md->versions},
                       {"platform", md->platform},
                       {"inputs", std::move(inputs)},
                       {"outputs", std::move(outputs)}});
}

void HandleModelReady(core::InferenceService& service, const HttpRequest& req, ResponseWriter& w) {
  auto ready = service.IsModelReady(std::string(req.Param("model")), std::string(req.Param("version")));
  if (!ready.ok()) {
    w.SendError(400, ready.status().message());  // Triton: any failure is "not ready", 400
    return;
  }
  SendEmpty(w, *ready ? 200 : 400);
}

void HandleModelConfig(core::InferenceService& service, const HttpRequest& req, ResponseWriter& w) {
  auto config = service.GetModelConfig(std::string(req.Param("model")), std::string(req.Param("version")));
  if (!config.ok()) {
    w.SendError(config.status());
    return;
  }
  // Triton's rendering: int64 fields (dims) as numbers, default-valued fields printed.
  auto text = core::ModelConfigToJson(*config);
  if (!text.ok()) {
    w.SendError(text.status());
    return;
  }
  w.Send(200, "application/json", std::move(*text));
}

void HandleStats(core::InferenceService& service, const HttpRequest& req, ResponseWriter& w) {
  auto stats = service.Statistics(std::string(req.Param("model")), std::string(req.Param("version")));
  if (!stats.ok()) {
    w.SendError(stats.status());
    return;
  }
  json model_stats = json::array();
  for (const auto& s : *stats) model_stats.push_back(ModelStatisticsToJson(s));
  w.SendJson(200, json{{"model_stats", std::move(model_stats)}});
}

// Non-decoupled inference: one request, one reply when the final event arrives.
void HandleInfer(core::InferenceService& service, const RequestLimits& limits, const HttpRequest& req,
                 const std::shared_ptr<ResponseWriter>& w) {
  const std::string model(req.Param("model"));
  const std::string version(req.Param("version"));
  auto version_number = ParseModelVersion(version);
  if (!version_number.ok()) {
    w->SendError(version_number.status());
    return;
  }
  auto decoupled = service.IsModelDecoupled(model, version);
  if (!decoupled.ok()) {
    w->SendError(decoupled.status());
    return;
  }
  if (*decoupled) {
    w->SendError(Unsupported(kDecoupledInferError));
    return;
  }
  // Triton's client compresses the whole body (JSON header and binary tensors) when asked;
  // Inference-Header-Content-Length counts the decoded bytes.
  auto decompressed = DecodeContentEncoding(req.Header("content-encoding"), req.body,
                                            limits.max_decoded_body_bytes);
  if (!decompressed.ok()) {
    if (decompressed.status().code() == StatusCode::kUnsupported) {  // Triton: 415
      w->SendJson(415, json{{"error", decompressed.status().message()}},
                  {{"Accept-Encoding", "gzip, deflate"}});
    } else {
      w->SendError(decompressed.status());
    }
    return;
  }
  const std::string_view body =
      decompressed->has_value() ? std::string_view(**decompressed) : std::string_view(req.body);
  auto decoded = DecodeInferRequest(body, req.Header("inference-header-content-length"), limits);
  if (!decoded.ok()) {
    w->SendError(decoded.status());
    return;
  }
  decoded->request.model_name = model;
  decoded->request.model_version = *version_number;

  // The first response is the reply; it is rendered on the io thread, not the core's.
  auto first = std::make_shared<std::optional<InferResponse>>();
  auto sink = [w, first, encoding = decoded->encoding](ResponseEvent event) {
    if (event.has_response && !first->has_value()) *first = std::move(event.response);
    if (!event.final) return;
    w->Post([w, first, encoding, status = std::move(event.status)] {
      if (!status.ok()) {
        w->SendError(status);
        return;
      }
      if (!first->has_value()) {
        w->SendError(500, "model produced no response");
        return;
      }
      auto encoded = EncodeInferResponse(**first, encoding);
      if (!encoded.ok()) {
        w->SendError(Internal("invalid response from the model: " + encoded.status().message()));
        return;
      }
      if (encoded->json_length) {
        w->Send(200, "application/octet-stream", std::move(encoded->body),
                {{"Inference-Header-Content-Length", std::to_string(*encoded->json_length)}});
      } else {
        w->Send(200, "application/json", std::move(encoded->body));
      }
    });
  };
  auto inflight = service.Infer(std::move(decoded->request), std::move(sink));
  if (!inflight.ok()) {
    w->SendError(inflight.status());
    return;
  }
  w->OnDisconnect([handle = *inflight] { handle->Cancel(); });
}

}  // namespace

void RegisterKServeModelRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits) {
  core::InferenceService* svc = &service;
  // Extensions Sluice does not implement answer 501 naming them, as over gRPC (not 404: the
  // path is Triton's, and perf_analyzer --shared-memory should say why it cannot run).
  auto unsupported = [&router](const char* method, const std::string& path, const char* what) {
    router.Add(method, path, [what](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
      w->SendError(Unsupported(std::string(what) + " is not supported by Sluice"));
    });
  };
  for (const auto& [kind, what] : {std::pair{"system", "system shared memory"}, std::pair{"cuda", "CUDA shared memory"}}) {
    const std::string root = std::string("/v2/") + kind + "sharedmemory";
    unsupported("GET", root + "/status", what);
    unsupported("GET", root + "/region/{region}/status", what);
    unsupported("POST", root + "/region/{region}/register", what);
    unsupported("POST", root + "/region/{region}/unregister", what);
    unsupported("POST", root + "/unregister", what);
  }
  for (const char* method : {"GET", "POST"}) {
    unsupported(method, "/v2/trace/setting", "tracing");
    unsupported(method, "/v2/models/{model}/trace/setting", "tracing");
  }
  router.Add("GET", "/v2/health/live", [svc](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    SendEmpty(*w, svc->IsLive() ? 200 : 400);
  });
  router.Add("GET", "/v2/health/ready", [svc](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    // 503 when not ready (Triton answers 400): from SIGTERM on, probes and load balancers see
    // a server that is going away, not a bad request.
    SendEmpty(*w, svc->IsReady() ? 200 : 503);
  });
  router.Add("GET", "/v2", [limits](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->SendJson(200, json{{"name", limits.server_name},
                          {"version", limits.server_version},
                          {"extensions", core::ServerExtensions()}});
  });
  // Before /v2/models/{model}, which would otherwise take "stats" as a model name.
  router.Add("GET", "/v2/models/stats", [svc](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    HandleStats(*svc, r, *w);
  });
  for (const std::string prefix : {"/v2/models/{model}", "/v2/models/{model}/versions/{version}"}) {
    router.Add("GET", prefix, [svc](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleModelMetadata(*svc, r, *w);
    });
    router.Add("GET", prefix + "/ready", [svc](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleModelReady(*svc, r, *w);
    });
    router.Add("GET", prefix + "/config", [svc](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleModelConfig(*svc, r, *w);
    });
    router.Add("GET", prefix + "/stats", [svc](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleStats(*svc, r, *w);
    });
    router.Add("POST", prefix + "/infer", [svc, limits](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
      HandleInfer(*svc, limits, r, w);
    });
  }
}

void RegisterKServeRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits) {
  RegisterKServeModelRoutes(router, service, limits);
  RegisterRepositoryRoutes(router, service, limits);
  RegisterGenerateRoutes(router, service, limits);
}

}  // namespace sluice::http

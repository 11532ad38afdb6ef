#pragma once
// KServe v2 + Triton extension routes on a Router, served from a core::InferenceService:
// health, server/model metadata, ready, config, infer (JSON and binary tensor data), stats,
// repository index/load/unload, logging, and the generate extension (generate,
// generate_stream as SSE). Paths and JSON shapes as in shared/PROTOCOL.md.
//
// `service` must outlive the server that serves these routes (handlers keep a reference).

#include "core/inference_service.h"
#include "frontend/http/request_limits.h"
#include "frontend/http/router.h"

namespace sluice::http {

// Everything below.
void RegisterKServeRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits);

// /v2/health/*, /v2, /v2/models/{m}[/versions/{v}][/ready|/config|/infer|/stats], /v2/models/stats.
void RegisterKServeModelRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits);
// /v2/repository/index, /v2/repository/models/{m}/load|unload, /v2/logging.
void RegisterRepositoryRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits);
// /v2/models/{m}[/versions/{v}]/generate and /generate_stream.
void RegisterGenerateRoutes(Router& router, core::InferenceService& service, const RequestLimits& limits);

// The message Triton gives for /infer on a decoupled model (HTTP 501).
inline constexpr char kDecoupledInferError[] =
    "HTTP end point doesn't support models with decoupled transaction policy";

}  // namespace sluice::http

#include "frontend/grpc/grpc_inference_service.h"

#include <exception>
#include <string>
#include <utility>

#include "common/log_settings.h"
#include "frontend/grpc/grpc_status.h"
#include "frontend/grpc/infer_codec.h"
#include "frontend/grpc/log_settings_rpc.h"
#include "frontend/grpc/model_infer_reactor.h"
#include "frontend/grpc/stream_infer_reactor.h"

namespace sluice::grpc_frontend {
namespace {

// Runs `fn` (returning Status), catching anything thrown, as STYLE.md §7 asks.
template <typename Fn>
Status Guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Internal(std::string("unexpected error: ") + e.what());
  } catch (...) {
    return Internal("unexpected error");
  }
}

// Answers a quick RPC on the calling gRPC thread.
template <typename Fn>
::grpc::ServerUnaryReactor* Answer(::grpc::CallbackServerContext* context, Fn&& fn) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(Guarded(std::forward<Fn>(fn))));
  return reactor;
}

::grpc::ServerUnaryReactor* NotSupported(::grpc::CallbackServerContext* context, const char* what) {
  return Answer(context,
                [what] { return Unsupported(std::string(what) + " is not supported by Sluice"); });
}

void RenderTensorMetadata(const core::TensorMetadata& t,
                          inference::ModelMetadataResponse::TensorMetadata* out) {
  out->set_name(t.name);
  out->set_datatype(std::string(DataTypeName(t.datatype)));
  for (int64_t d : t.shape) out->add_shape(d);
}

void RenderDuration(const core::StatDuration& d, inference::StatisticDuration* out) {
  out->set_count(d.count);
  out->set_ns(d.ns);
}

}  // namespace

GrpcInferenceService::GrpcInferenceService(core::InferenceService& service,
                                           BlockingExecutor& executor,
                                           const GrpcServerOptions& options)
    : service_(service), executor_(executor), options_(options) {}

::grpc::ServerUnaryReactor* GrpcInferenceService::ServerLive(
    Context* context, const inference::ServerLiveRequest*,
    inference::ServerLiveResponse* response) {
  return Answer(context, [&] {
    response->set_live(service_.IsLive());
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ServerReady(
    Context* context, const inference::ServerReadyRequest*,
    inference::ServerReadyResponse* response) {
  return Answer(context, [&] {
    response->set_ready(service_.IsReady());
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ModelReady(
    Context* context, const inference::ModelReadyRequest* request,
    inference::ModelReadyResponse* response) {
  return Answer(context, [&] {
    ASSIGN_OR_RETURN(bool ready, service_.IsModelReady(request->name(), request->version()));
    response->set_ready(ready);
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ServerMetadata(
    Context* context, const inference::ServerMetadataRequest*,
    inference::ServerMetadataResponse* response) {
  return Answer(context, [&] {
    response->set_name(options_.server_name);
    response->set_version(options_.server_version);
    for (const std::string& e : options_.extensions) response->add_extensions(e);
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ModelMetadata(
    Context* context, const inference::ModelMetadataRequest* request,
    inference::ModelMetadataResponse* response) {
  return Answer(context, [&] {
    ASSIGN_OR_RETURN(core::ModelMetadata m,
                     service_.GetModelMetadata(request->name(), request->version()));
    response->set_name(m.name);
    for (const std::string& v : m.versions) response->add_versions(v);
    response->set_platform(m.platform);
    for (const auto& t : m.inputs) RenderTensorMetadata(t, response->add_inputs());
    for (const auto& t : m.outputs) RenderTensorMetadata(t, response->add_outputs());
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ModelInfer(
    Context* context, const inference::ModelInferRequest* request,
    inference::ModelInferResponse* response) {
  (void)context;
  return ModelInferReactor::Start(service_, *request, response);
}

::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
GrpcInferenceService::ModelStreamInfer(Context* context) {
  return new StreamInferReactor(service_, context, options_);
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ModelConfig(
    Context* context, const inference::ModelConfigRequest* request,
    inference::ModelConfigResponse* response) {
  return Answer(context, [&] {
    ASSIGN_OR_RETURN(*response->mutable_config(),
                     service_.GetModelConfig(request->name(), request->version()));
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::ModelStatistics(
    Context* context, const inference::ModelStatisticsRequest* request,
    inference::ModelStatisticsResponse* response) {
  return Answer(context, [&] {
    ASSIGN_OR_RETURN(auto stats, service_.Statistics(request->name(), request->version()));
    for (const core::ModelStatistics& s : stats) {
      auto* out = response->add_model_stats();
      out->set_name(s.name);
      out->set_version(s.version);
      out->set_last_inference(s.last_inference_ms);
      out->set_inference_count(s.inference_count);
      out->set_execution_count(s.execution_count);
      auto* inf = out->mutable_inference_stats();
      RenderDuration(s.success, inf->mutable_success());
      RenderDuration(s.fail, inf->mutable_fail());
      RenderDuration(s.queue, inf->mutable_queue());
      RenderDuration(s.compute_input, inf->mutable_compute_input());
      RenderDuration(s.compute_infer, inf->mutable_compute_infer());
      RenderDuration(s.compute_output, inf->mutable_compute_output());
    }
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryIndex(
    Context* context, const inference::RepositoryIndexRequest* request,
    inference::RepositoryIndexResponse* response) {
  return Answer(context, [&] {
    for (const core::ModelIndexEntry& e : service_.RepositoryIndex(request->ready())) {
      auto* m = response->add_models();
      m->set_name(e.name);
      if (e.version) m->set_version(std::to_string(*e.version));
      m->set_state(std::string(core::ModelStateName(e.state)));
      m->set_reason(e.reason);
    }
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryModelLoad(
    Context* context, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse*) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Status parsed;
  core::LoadOptions load;
  for (const auto& [key, p] : request->parameters()) {
    using P = inference::ModelRepositoryParameter;
    if (key == "config") {
      if (p.parameter_choice_case() != P::kStringParam) {
        parsed = InvalidArgument("load parameter 'config' must be a string");
        break;
      }
      load.config_json = p.string_param();
    } else if (key.starts_with("file:")) {
      if (p.parameter_choice_case() != P::kBytesParam) {
        parsed = InvalidArgument("load parameter '" + key.substr(0, 128) + "' must be bytes");
        break;
      }
      load.files[key.substr(5)] = p.bytes_param();
    }
  }
  if (!parsed.ok()) {
    reactor->Finish(ToGrpcStatus(parsed));
    return reactor;
  }
  // The request message lives until Finish, so the task may read the name from it.
  const std::string& name = request->model_name();
  bool posted = executor_.Post([this, reactor, &name, load = std::move(load)] {
    reactor->Finish(ToGrpcStatus(Guarded([&] { return service_.LoadModel(name, load); })));
  });
  if (!posted)
    reactor->Finish(ToGrpcStatus(Unavailable("too many load/unload requests in progress")));
  return reactor;
}

::grpc::ServerUnaryReactor* GrpcInferenceService::RepositoryModelUnload(
    Context* context, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse*) {
  ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  core::UnloadOptions unload;
  for (const auto& [key, p] : request->parameters()) {
    using P = inference::ModelRepositoryParameter;
    if (key != "unload_dependents" && key != "wait") continue;
    if (p.parameter_choice_case() != P::kBoolParam) {
      reactor->Finish(
          ToGrpcStatus(InvalidArgument("unload parameter '" + key + "' must be a bool")));
      return reactor;
    }
    (key == "wait" ? unload.wait : unload.unload_dependents) = p.bool_param();
  }
  const std::string& name = request->model_name();
  bool posted = executor_.Post([this, reactor, &name, unload] {
    reactor->Finish(ToGrpcStatus(Guarded([&] { return service_.UnloadModel(name, unload); })));
  });
  if (!posted)
    reactor->Finish(ToGrpcStatus(Unavailable("too many load/unload requests in progress")));
  return reactor;
}

::grpc::ServerUnaryReactor* GrpcInferenceService::LogSettings(
    Context* context, const inference::LogSettingsRequest* request,
    inference::LogSettingsResponse* response) {
  return Answer(context, [&] {
    if (request->settings_size() > 0) {
      ASSIGN_OR_RETURN(sluice::LogSettings updated,
                       ApplyLogSettingsRequest(*request, GetLogSettings()));
      SetLogSettings(updated);
    }
    RenderLogSettings(GetLogSettings(), response);
    return Status::Ok();
  });
}

::grpc::ServerUnaryReactor* GrpcInferenceService::SystemSharedMemoryStatus(
    Context* context, const inference::SystemSharedMemoryStatusRequest*,
    inference::SystemSharedMemoryStatusResponse*) {
  return NotSupported(context, "system shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::SystemSharedMemoryRegister(
    Context* context, const inference::SystemSharedMemoryRegisterRequest*,
    inference::SystemSharedMemoryRegisterResponse*) {
  return NotSupported(context, "system shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::SystemSharedMemoryUnregister(
    Context* context, const inference::SystemSharedMemoryUnregisterRequest*,
    inference::SystemSharedMemoryUnregisterResponse*) {
  return NotSupported(context, "system shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::CudaSharedMemoryStatus(
    Context* context, const inference::CudaSharedMemoryStatusRequest*,
    inference::CudaSharedMemoryStatusResponse*) {
  return NotSupported(context, "CUDA shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::CudaSharedMemoryRegister(
    Context* context, const inference::CudaSharedMemoryRegisterRequest*,
    inference::CudaSharedMemoryRegisterResponse*) {
  return NotSupported(context, "CUDA shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::CudaSharedMemoryUnregister(
    Context* context, const inference::CudaSharedMemoryUnregisterRequest*,
    inference::CudaSharedMemoryUnregisterResponse*) {
  return NotSupported(context, "CUDA shared memory");
}
::grpc::ServerUnaryReactor* GrpcInferenceService::TraceSetting(
    Context* context, const inference::TraceSettingRequest*, inference::TraceSettingResponse*) {
  return NotSupported(context, "tracing");
}

}  // namespace sluice::grpc_frontend

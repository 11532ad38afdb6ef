#pragma once
// inference.GRPCInferenceService on gRPC's callback API, over core::InferenceService. Quick
// RPCs answer on gRPC's threads; RepositoryModelLoad / Unload run on a BlockingExecutor;
// ModelInfer and ModelStreamInfer run as reactors (model_infer_reactor.h,
// stream_infer_reactor.h), so open streams hold no thread. The shared-memory and trace
// RPCs answer UNIMPLEMENTED. Nothing thrown inside a handler escapes it: it becomes
// INTERNAL.

#include "core/inference_service.h"
#include "frontend/grpc/blocking_executor.h"
#include "frontend/grpc/grpc_server_options.h"
#include "grpc_service.grpc.pb.h"

namespace sluice::grpc_frontend {

class GrpcInferenceService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `service` and `executor` outlive this object and every RPC it serves.
  GrpcInferenceService(core::InferenceService& service, BlockingExecutor& executor,
                       const GrpcServerOptions& options);

  using Context = ::grpc::CallbackServerContext;
  using Unary = ::grpc::ServerUnaryReactor;

  Unary* ServerLive(Context*, const inference::ServerLiveRequest*,
                    inference::ServerLiveResponse*) override;
  Unary* ServerReady(Context*, const inference::ServerReadyRequest*,
                     inference::ServerReadyResponse*) override;
  Unary* ModelReady(Context*, const inference::ModelReadyRequest*,
                    inference::ModelReadyResponse*) override;
  Unary* ServerMetadata(Context*, const inference::ServerMetadataRequest*,
                        inference::ServerMetadataResponse*) override;
  Unary* ModelMetadata(Context*, const inference::ModelMetadataRequest*,
                       inference::ModelMetadataResponse*) override;
  Unary* ModelInfer(Context*, const inference::ModelInferRequest*,
                    inference::ModelInferResponse*) override;
  ::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(Context*) override;
  Unary* ModelConfig(Context*, const inference::ModelConfigRequest*,
                     inference::ModelConfigResponse*) override;
  Unary* ModelStatistics(Context*, const inference::ModelStatisticsRequest*,
                         inference::ModelStatisticsResponse*) override;
  Unary* RepositoryIndex(Context*, const inference::RepositoryIndexRequest*,
                         inference::RepositoryIndexResponse*) override;
  Unary* RepositoryModelLoad(Context*, const inference::RepositoryModelLoadRequest*,
                             inference::RepositoryModelLoadResponse*) override;
  Unary* RepositoryModelUnload(Context*, const inference::RepositoryModelUnloadRequest*,
                               inference::RepositoryModelUnloadResponse*) override;
  Unary* SystemSharedMemoryStatus(Context*, const inference::SystemSharedMemoryStatusRequest*,
                                  inference::SystemSharedMemoryStatusResponse*) override;
  Unary* SystemSharedMemoryRegister(Context*, const inference::SystemSharedMemoryRegisterRequest*,
                                    inference::SystemSharedMemoryRegisterResponse*) override;
  Unary* SystemSharedMemoryUnregister(Context*,
                                      const inference::SystemSharedMemoryUnregisterRequest*,
                                      inference::SystemSharedMemoryUnregisterResponse*) override;
  Unary* CudaSharedMemoryStatus(Context*, const inference::CudaSharedMemoryStatusRequest*,
                                inference::CudaSharedMemoryStatusResponse*) override;
  Unary* CudaSharedMemoryRegister(Context*, const inference::CudaSharedMemoryRegisterRequest*,
                                  inference::CudaSharedMemoryRegisterResponse*) override;
  Unary* CudaSharedMemoryUnregister(Context*, const inference::CudaSharedMemoryUnregisterRequest*,
                                    inference::CudaSharedMemoryUnregisterResponse*) override;
  Unary* TraceSetting(Context*, const inference::TraceSettingRequest*,
                      inference::TraceSettingResponse*) override;
  Unary* LogSettings(Context*, const inference::LogSettingsRequest*,
                     inference::LogSettingsResponse*) override;

 private:
  core::InferenceService& service_;
  BlockingExecutor& executor_;
  const GrpcServerOptions options_;
};

}  // namespace sluice::grpc_frontend

#pragma once
// Access control for inference.GRPCInferenceService: a service that checks each call's
// metadata against an AccessPolicy (common/access_policy.h) before handing it to the real
// service. A missing or wrong API key (`authorization: Bearer <key>`) ends the call with
// UNAUTHENTICATED, a restricted category without its `key: value` metadata with
// PERMISSION_DENIED ("This protocol is restricted, expecting header '<key>'"); the real
// service never sees either. RPC -> category as Triton's --grpc-restricted-protocol.
//
// Thread-safety: immutable after construction; calls run on gRPC's threads concurrently.

#include <optional>
#include <string_view>

#include "common/access_policy.h"
#include "grpc_service.grpc.pb.h"

namespace sluice::grpc_frontend {

// Every unary RPC of GRPCInferenceService with its access category, as Triton's
// --grpc-restricted-protocol groups them: X(Name, ApiCategory enumerator). The service below
// overrides each, and GrpcMethodCategory reads its table from here.
#define SLUICE_GRPC_UNARY_RPCS(X)                \
  X(ServerLive, kHealth)                         \
  X(ServerReady, kHealth)                        \
  X(ModelReady, kHealth)                         \
  X(ServerMetadata, kMetadata)                   \
  X(ModelMetadata, kMetadata)                    \
  X(ModelInfer, kInference)                      \
  X(ModelConfig, kModelConfig)                   \
  X(ModelStatistics, kStatistics)                \
  X(RepositoryIndex, kModelRepository)           \
  X(RepositoryModelLoad, kModelRepository)       \
  X(RepositoryModelUnload, kModelRepository)     \
  X(SystemSharedMemoryStatus, kSharedMemory)     \
  X(SystemSharedMemoryRegister, kSharedMemory)   \
  X(SystemSharedMemoryUnregister, kSharedMemory) \
  X(CudaSharedMemoryStatus, kSharedMemory)       \
  X(CudaSharedMemoryRegister, kSharedMemory)     \
  X(CudaSharedMemoryUnregister, kSharedMemory)   \
  X(TraceSetting, kTrace)                        \
  X(LogSettings, kLogging)

// The category of an RPC of GRPCInferenceService by its method name ("ModelInfer");
// nullopt for a name this table does not know (such an RPC is refused: fail closed).
std::optional<ApiCategory> GrpcMethodCategory(std::string_view method);

class AuthorizingGrpcService final : public inference::GRPCInferenceService::CallbackService {
 public:
  // `inner` and `policy` outlive this object and every RPC it serves.
  AuthorizingGrpcService(inference::GRPCInferenceService::CallbackService& inner,
                         const AccessPolicy& policy);

  using Context = ::grpc::CallbackServerContext;
  using Unary = ::grpc::ServerUnaryReactor;

#define SLUICE_GRPC_DECLARE(Name, Category) \
  Unary* Name(Context*, const inference::Name##Request*, inference::Name##Response*) override;
  SLUICE_GRPC_UNARY_RPCS(SLUICE_GRPC_DECLARE)
#undef SLUICE_GRPC_DECLARE
  ::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>*
  ModelStreamInfer(Context*) override;

  // The refusal for a call to `method` with this context's metadata; OK to let it through.
  ::grpc::Status Check(std::string_view method, const Context& context) const;

 private:
  // Constant after construction.
  inference::GRPCInferenceService::CallbackService& inner_;
  const AccessPolicy& policy_;
};

}  // namespace sluice::grpc_frontend

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

#define SLUICE_GRPC_UNARY(Name) \
  Unary* Name(Context*, const inference::Name##Request*, inference::Name##Response*) override;
  SLUICE_GRPC_UNARY(ServerLive)
  SLUICE_GRPC_UNARY(ServerReady)
  SLUICE_GRPC_UNARY(ModelReady)
  SLUICE_GRPC_UNARY(ServerMetadata)
  SLUICE_GRPC_UNARY(ModelMetadata)
  SLUICE_GRPC_UNARY(ModelInfer)
  SLUICE_GRPC_UNARY(ModelConfig)
  SLUICE_GRPC_UNARY(ModelStatistics)
  SLUICE_GRPC_UNARY(RepositoryIndex)
  SLUICE_GRPC_UNARY(RepositoryModelLoad)
  SLUICE_GRPC_UNARY(RepositoryModelUnload)
  SLUICE_GRPC_UNARY(SystemSharedMemoryStatus)
  SLUICE_GRPC_UNARY(SystemSharedMemoryRegister)
  SLUICE_GRPC_UNARY(SystemSharedMemoryUnregister)
  SLUICE_GRPC_UNARY(CudaSharedMemoryStatus)
  SLUICE_GRPC_UNARY(CudaSharedMemoryRegister)
  SLUICE_GRPC_UNARY(CudaSharedMemoryUnregister)
  SLUICE_GRPC_UNARY(TraceSetting)
  SLUICE_GRPC_UNARY(LogSettings)
#undef SLUICE_GRPC_UNARY
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

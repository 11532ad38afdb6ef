#include "frontend/grpc/grpc_access.h"

#include <string>
#include <utility>

namespace sluice::grpc_frontend {
namespace {

using StreamReactor =
    ::grpc::ServerBidiReactor<inference::ModelInferRequest, inference::ModelStreamInferResponse>;

// Ends a refused stream at once, before reading anything.
class RefusedStream final : public StreamReactor {
 public:
  explicit RefusedStream(::grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

std::optional<ApiCategory> GrpcMethodCategory(std::string_view method) {
  if (method == "ServerLive" || method == "ServerReady" || method == "ModelReady")
    return ApiCategory::kHealth;
  if (method == "ServerMetadata" || method == "ModelMetadata") return ApiCategory::kMetadata;
  if (method == "ModelInfer" || method == "ModelStreamInfer") return ApiCategory::kInference;
  if (method == "ModelConfig") return ApiCategory::kModelConfig;
  if (method == "ModelStatistics") return ApiCategory::kStatistics;
  if (method == "RepositoryIndex" || method == "RepositoryModelLoad" ||
      method == "RepositoryModelUnload")
    return ApiCategory::kModelRepository;
  if (method == "SystemSharedMemoryStatus" || method == "SystemSharedMemoryRegister" ||
      method == "SystemSharedMemoryUnregister" || method == "CudaSharedMemoryStatus" ||
      method == "CudaSharedMemoryRegister" || method == "CudaSharedMemoryUnregister")
    return ApiCategory::kSharedMemory;
  if (method == "TraceSetting") return ApiCategory::kTrace;
  if (method == "LogSettings") return ApiCategory::kLogging;
  return std::nullopt;
}

AuthorizingGrpcService::AuthorizingGrpcService(
    inference::GRPCInferenceService::CallbackService& inner, const AccessPolicy& policy)
    : inner_(inner), policy_(policy) {}

::grpc::Status AuthorizingGrpcService::Check(std::string_view method,
                                             const Context& context) const {
  const std::optional<ApiCategory> category = GrpcMethodCategory(method);
  if (!category)
    return ::grpc::Status(::grpc::StatusCode::INTERNAL,
                          "RPC " + std::string(method) + " has no access category");
  const auto& metadata = context.client_metadata();
  const AccessDecision decision = policy_.Authorize(*category, [&metadata](std::string_view name) {
    auto it = metadata.find(::grpc::string_ref(name.data(), name.size()));
    return it == metadata.end() ? std::nullopt
                                : std::optional<std::string_view>(
                                      std::string_view(it->second.data(), it->second.size()));
  });
  switch (decision.kind) {
    case AccessDecision::Kind::kAllow:
      return ::grpc::Status::OK;
    case AccessDecision::Kind::kUnauthenticated:
      return ::grpc::Status(::grpc::StatusCode::UNAUTHENTICATED,
                            "Unauthenticated: missing or invalid API key (send metadata "
                            "'authorization: Bearer <key>')");
    case AccessDecision::Kind::kForbidden: {
      // Triton's wording over gRPC says "protocol" where HTTP says "API".
      const ApiRestriction* r = policy_.RestrictionOf(*category);
      return ::grpc::Status(
          ::grpc::StatusCode::PERMISSION_DENIED,
          "This protocol is restricted, expecting header '" + (r ? r->key : std::string()) + "'");
    }
  }
  return ::grpc::Status(::grpc::StatusCode::INTERNAL, "unexpected access decision");
}

#define SLUICE_GRPC_UNARY(Name)                                       \
  ::grpc::ServerUnaryReactor* AuthorizingGrpcService::Name(           \
      Context* context, const inference::Name##Request* request,      \
      inference::Name##Response* response) {                          \
    ::grpc::Status refused = Check(#Name, *context);                  \
    if (refused.ok()) return inner_.Name(context, request, response); \
    ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();  \
    reactor->Finish(std::move(refused));                              \
    return reactor;                                                   \
  }
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

StreamReactor* AuthorizingGrpcService::ModelStreamInfer(Context* context) {
  ::grpc::Status refused = Check("ModelStreamInfer", *context);
  if (refused.ok()) return inner_.ModelStreamInfer(context);
  return new RefusedStream(std::move(refused));  // deletes itself in OnDone
}

}  // namespace sluice::grpc_frontend

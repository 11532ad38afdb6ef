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
#define SLUICE_GRPC_CATEGORY(Name, Category) \
  if (method == #Name) return ApiCategory::Category;
  SLUICE_GRPC_UNARY_RPCS(SLUICE_GRPC_CATEGORY)
#undef SLUICE_GRPC_CATEGORY
  if (method == "ModelStreamInfer") return ApiCategory::kInference;
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

#define SLUICE_GRPC_DEFINE(Name, Category)                            \
  ::grpc::ServerUnaryReactor* AuthorizingGrpcService::Name(           \
      Context* context, const inference::Name##Request* request,      \
      inference::Name##Response* response) {                          \
    ::grpc::Status refused = Check(#Name, *context);                  \
    if (refused.ok()) return inner_.Name(context, request, response); \
    ::grpc::ServerUnaryReactor* reactor = context->DefaultReactor();  \
    reactor->Finish(std::move(refused));                              \
    return reactor;                                                   \
  }
SLUICE_GRPC_UNARY_RPCS(SLUICE_GRPC_DEFINE)
#undef SLUICE_GRPC_DEFINE

StreamReactor* AuthorizingGrpcService::ModelStreamInfer(Context* context) {
  ::grpc::Status refused = Check("ModelStreamInfer", *context);
  if (refused.ok()) return inner_.ModelStreamInfer(context);
  return new RefusedStream(std::move(refused));  // deletes itself in OnDone
}

}  // namespace sluice::grpc_frontend

#include "frontend/grpc/grpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>

#include "frontend/grpc/blocking_executor.h"
#include "frontend/grpc/grpc_access.h"
#include "frontend/grpc/grpc_inference_service.h"

namespace sluice::grpc_frontend {

Result<std::unique_ptr<GrpcServer>> GrpcServer::Create(std::string address,
                                                       core::InferenceService& service,
                                                       GrpcServerOptions options) {
  if (address.empty() || address.find(':') == std::string::npos)
    return InvalidArgument("gRPC address '" + address + "' must be host:port");
  if (options.max_message_bytes <= 0)
    return InvalidArgument("gRPC max_message_bytes must be positive");
  if (options.max_inflight_per_stream == 0 || options.max_pending_writes_per_stream == 0)
    return InvalidArgument("gRPC per-stream limits must be positive");
  if (options.max_concurrent_streams == 0)
    return InvalidArgument("gRPC max_concurrent_streams must be positive");
  return std::unique_ptr<GrpcServer>(
      new GrpcServer(std::move(address), service, std::move(options)));
}

GrpcServer::GrpcServer(std::string address, core::InferenceService& service,
                       GrpcServerOptions options)
    : address_(std::move(address)), service_(service), options_(std::move(options)) {}

GrpcServer::~GrpcServer() {
  Stop();
}

Status GrpcServer::Start() {
  MutexLock lock(mu_);
  if (started_) return Internal("gRPC server already started");
  started_ = true;
  executor_ =
      std::make_unique<BlockingExecutor>(options_.blocking_threads, options_.max_queued_blocking);
  grpc_service_ = std::make_unique<GrpcInferenceService>(service_, *executor_, options_);

  bool health_open = true;
  if (options_.access) {
    authorizing_ = std::make_unique<AuthorizingGrpcService>(*grpc_service_, *options_.access);
    health_open = options_.access->Authorize(ApiCategory::kHealth, [](std::string_view) {
      return std::optional<std::string_view>();
    }).allowed();
  }

  // A process-wide switch in gRPC: it applies to servers built after it.
  ::grpc::EnableDefaultHealthCheckService(options_.enable_health_service && health_open);
  ::grpc::ServerBuilder builder;
  builder.AddListeningPort(address_, ::grpc::InsecureServerCredentials(), &port_);
  if (authorizing_) {
    builder.RegisterService(authorizing_.get());
  } else {
    builder.RegisterService(grpc_service_.get());
  }
  // Without SO_REUSEPORT a second server on a busy port fails instead of sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, static_cast<int>(options_.max_concurrent_streams));
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    port_ = 0;
    executor_->Stop();
    return Unavailable("gRPC server cannot listen on " + address_);
  }
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(true);
  return Status::Ok();
}

void GrpcServer::Stop() {
  MutexLock lock(mu_);
  if (server_) {
    if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
    server_->Shutdown(std::chrono::system_clock::now() + options_.shutdown_grace);
    server_->Wait();
  }
  if (executor_) executor_->Stop();
  server_.reset();
  authorizing_.reset();
  grpc_service_.reset();
  executor_.reset();
  port_ = 0;
}

}  // namespace sluice::grpc_frontend

#pragma once
// The gRPC frontend: serves inference.GRPCInferenceService (and grpc.health.v1) on one
// address, talking only to core::InferenceService.
//
//   auto server = GrpcServer::Create("0.0.0.0:8001", service, options);
//   RETURN_IF_ERROR((*server)->Start());   // binds; port() is the bound port
//   ...
//   (*server)->Stop();  // stop accepting; in-flight RPCs get options.shutdown_grace, then
//                       // are cancelled (their requests Cancel()ed); joins every thread
//
// Teardown order (Stop, also run by the destructor): health NOT_SERVING -> grpc Shutdown
// with the grace deadline (waits for every RPC to finish) -> blocking executor joined ->
// server object destroyed -> the authorizing service, then the service it wraps. The InferenceService must outlive Stop().

#include <memory>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "core/inference_service.h"
#include "frontend/grpc/grpc_server_options.h"

namespace grpc {
class Server;
}

namespace sluice::grpc_frontend {

class BlockingExecutor;
class GrpcInferenceService;
class AuthorizingGrpcService;

class GrpcServer {
 public:
  // `address` is "host:port" (port 0 picks a free port at Start).
  static Result<std::unique_ptr<GrpcServer>> Create(std::string address,
                                                    core::InferenceService& service,
                                                    GrpcServerOptions options = {});
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds and starts serving. Fails if the address cannot be bound; at most once.
  Status Start() SLUICE_EXCLUDES(mu_);
  // Idempotent; safe to call without Start.
  void Stop() SLUICE_EXCLUDES(mu_);
  // The bound port after a successful Start, else 0.
  int port() const SLUICE_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return port_;
  }

 private:
  GrpcServer(std::string address, core::InferenceService& service, GrpcServerOptions options);

  // Constant after construction.
  const std::string address_;
  core::InferenceService& service_;
  const GrpcServerOptions options_;

  mutable Mutex mu_;  // serialises Start and Stop
  int port_ SLUICE_GUARDED_BY(mu_) = 0;
  bool started_ SLUICE_GUARDED_BY(mu_) = false;
  std::unique_ptr<BlockingExecutor> executor_ SLUICE_GUARDED_BY(mu_);
  std::unique_ptr<GrpcInferenceService> grpc_service_ SLUICE_GUARDED_BY(mu_);
  // Over grpc_service_, when options_.access.
  std::unique_ptr<AuthorizingGrpcService> authorizing_ SLUICE_GUARDED_BY(mu_);
  std::unique_ptr<::grpc::Server> server_ SLUICE_GUARDED_BY(mu_);
};

}  // namespace sluice::grpc_frontend

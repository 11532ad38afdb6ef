#pragma once
// The one mapping from Sluice's StatusCode to gRPC status codes (STYLE.md §7). Every gRPC
// handler turns its errors into a grpc::Status through this file only.

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace sluice::grpc_frontend {

::grpc::StatusCode ToGrpcCode(StatusCode code);

// OK for an OK status; otherwise the mapped code with the status message.
::grpc::Status ToGrpcStatus(const Status& status);

}  // namespace sluice::grpc_frontend

#include "frontend/grpc/grpc_status.h"

namespace sluice::grpc_frontend {

::grpc::StatusCode ToGrpcCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return ::grpc::StatusCode::OK;
    case StatusCode::kInvalidArgument:
      return ::grpc::StatusCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return ::grpc::StatusCode::NOT_FOUND;
    case StatusCode::kAlreadyExists:
      return ::grpc::StatusCode::ALREADY_EXISTS;
    case StatusCode::kUnavailable:
      return ::grpc::StatusCode::UNAVAILABLE;
    case StatusCode::kUnsupported:
      return ::grpc::StatusCode::UNIMPLEMENTED;
    case StatusCode::kInternal:
      return ::grpc::StatusCode::INTERNAL;
    case StatusCode::kCancelled:
      return ::grpc::StatusCode::CANCELLED;
    case StatusCode::kDeadlineExceeded:
      return ::grpc::StatusCode::DEADLINE_EXCEEDED;
    case StatusCode::kResourceExhausted:
      return ::grpc::StatusCode::RESOURCE_EXHAUSTED;
    case StatusCode::kUnknown:
      return ::grpc::StatusCode::UNKNOWN;
  }
  return ::grpc::StatusCode::UNKNOWN;
}

::grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return ::grpc::Status::OK;
  return ::grpc::Status(ToGrpcCode(status.code()), status.message());
}

}  // namespace sluice::grpc_frontend

#include "frontend/http/http_status.h"

#include <nlohmann/json.hpp>

#include "frontend/http/json_util.h"

namespace sluice::http {

int HttpStatusFromCode(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists: return 400;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnsupported: return 501;
    case StatusCode::kInternal: return 500;
    case StatusCode::kCancelled: return 400;
    case StatusCode::kDeadlineExceeded: return 504;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnknown: return 400;
  }
  return 500;
}

std::string ErrorBody(const std::string& message) {
  nlohmann::json j = nlohmann::json::object();
  j["error"] = message;
  return DumpJson(j);
}

}  // namespace sluice::http

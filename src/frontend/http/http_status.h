#pragma once
// The one mapping from Sluice's StatusCode to HTTP status codes (PROTOCOL.md), and the
// JSON error body `{"error": "..."}` every HTTP error carries.

#include <string>

#include "common/status.h"

namespace sluice::http {

// kInvalidArgument/kAlreadyExists/kCancelled/kUnknown -> 400, kNotFound -> 404,
// kUnavailable -> 503, kUnsupported -> 501, kInternal -> 500, kDeadlineExceeded -> 504,
// kResourceExhausted -> 429, kOk -> 200.
int HttpStatusFromCode(StatusCode code);

// `{"error":"<message>"}`, JSON-escaped (invalid UTF-8 replaced).
std::string ErrorBody(const std::string& message);

}  // namespace sluice::http

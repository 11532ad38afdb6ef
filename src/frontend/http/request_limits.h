#pragma once
// Caps on what one request may ask for, applied by the KServe (and later OpenAI) routes.
// Each is a server flag; the defaults are sane for LLM and tensor traffic.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/version.h"

namespace sluice::http {

struct RequestLimits {
  size_t max_json_depth = 64;                // arrays/objects nested deeper -> 400
  size_t max_tensor_rank = 16;               // dims per tensor
  int64_t max_tensor_elements = int64_t{1} << 28;  // per tensor, overflow-safe
  size_t max_decoded_body_bytes = size_t{64} << 20;  // a Content-Encoding'd body, decoded
  // Server metadata reported at /v2.
  std::string server_name = "sluice";
  std::string server_version = std::string(SluiceVersion());
};

}  // namespace sluice::http

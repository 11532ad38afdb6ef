#pragma once
// Where a client connects: "http://host:port", "host:port" or "host" (port 80 for http).
// Only plain http is supported (Sluice and Triton serve HTTP/1.1 without TLS on loopback).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::client {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// Parses a URL or host:port; a path after the authority is refused (paths belong to requests).
// `default_port` is used when none is given.
Result<Endpoint> ParseEndpoint(std::string_view url, uint16_t default_port = 80);

}  // namespace sluice::client

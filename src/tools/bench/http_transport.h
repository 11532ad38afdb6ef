#pragma once
// Transport for the HTTP APIs (OpenAI chat/completions, Triton generate/generate_stream):
// one keep-alive HttpClient per worker; streams read as SSE and timed chunk by chunk.

#include <memory>
#include <string>

#include "tools/bench/api.h"
#include "tools/bench/runner.h"
#include "tools/client/http_client.h"

namespace sluice::bench {

struct HttpTransportConfig {
  Api api = Api::kCompletions;
  client::Endpoint endpoint;
  std::string model;
  SamplingOptions sampling;
  client::HttpClientOptions http;
  bool keep_text = false;
};

std::unique_ptr<Transport> MakeHttpTransport(const HttpTransportConfig& config);

}  // namespace sluice::bench

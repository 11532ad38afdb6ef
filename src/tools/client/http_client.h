#pragma once
// A synchronous HTTP/1.1 client over one keep-alive connection (Boost.Beast underneath):
// plain requests with a bounded body, and streaming POSTs read as Server-Sent Events.
// For tools and tests:
//
//   auto http = HttpClient::Create({"127.0.0.1", 8000});
//   Result<HttpResponse> r = http->Post("/v2/models/m/generate", R"({"text_input":"hi"})");
//   auto sse = http->PostSse("/v2/models/m/generate_stream", body);
//   while (auto ev = (*sse)->Next()) { if (!ev.ok() || !*ev) break; use((*ev)->data); }
//
// Not thread-safe: one client per thread. Every read and write is bounded by
// `io_timeout`; errors are values (no exception escapes). A request on a kept-alive
// connection that the server closed meanwhile is retried once on a fresh connection.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/client/endpoint.h"
#include "tools/client/sse_parser.h"
#include "common/status.h"

namespace sluice::client {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;
  // The first header named `name` (case-insensitive), or "" when absent.
  std::string Header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds io_timeout{60000};  // per read or write, not per request
  size_t max_body_bytes = 64u << 20;            // for non-streamed bodies
  size_t max_event_bytes = 16u << 20;           // for one SSE event
};

class HttpConnection;  // defined in http_client.cc
class SseStream;

class HttpClient {
 public:
  // Connects lazily, on the first request.
  static std::unique_ptr<HttpClient> Create(Endpoint endpoint, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }

  Result<HttpResponse> Get(std::string_view path);
  Result<HttpResponse> Post(std::string_view path, std::string_view body,
                            std::string_view content_type = "application/json");
  // Any method; `headers` are added to Host, User-Agent, Content-Type (when a body is given).
  Result<HttpResponse> Request(std::string_view method, std::string_view path,
                               std::string_view body, const HttpHeaders& headers = {},
                               std::string_view content_type = "application/json");

  // Sends a POST and returns once the status line and headers have arrived; the body is then
  // read through the stream (SSE events, or all of it with ReadBody for an error status).
  // The stream takes this client's connection; the next request opens a new one.
  Result<std::unique_ptr<SseStream>> PostSse(std::string_view path, std::string_view body,
                                             const HttpHeaders& headers = {});

  // Closes the kept-alive connection (the next request reconnects).
  void Disconnect();

 private:
  HttpClient(Endpoint endpoint, HttpClientOptions options);
  Result<HttpConnection*> Connection();

  Endpoint endpoint_;
  HttpClientOptions options_;
  std::unique_ptr<HttpConnection> conn_;
};

// A response body read incrementally as Server-Sent Events. Owns its connection; destroying
// it (or Close) closes the socket, which is how a client disconnects mid-stream.
class SseStream {
 public:
  ~SseStream();
  SseStream(const SseStream&) = delete;
  SseStream& operator=(const SseStream&) = delete;

  int status() const { return status_; }
  const HttpHeaders& headers() const { return headers_; }
  std::string Header(std::string_view name) const;

  // The next event; nullopt once the body has ended (after its last complete event). An
  // error when the connection fails, a read times out, or the body ends inside an event.
  Result<std::optional<SseEvent>> Next();

  // Reads the rest of the body as raw bytes (for a non-2xx status), bounded.
  Result<std::string> ReadBody();

  // Closes the socket at once, without reading the rest: a client disconnect.
  void Close();

 private:
  friend class HttpClient;
  SseStream(std::unique_ptr<HttpConnection> conn, size_t max_event_bytes);
  // Reads some body bytes into `out`; returns false at the end of the body.
  Result<bool> ReadSome(std::string* out);

  std::unique_ptr<HttpConnection> conn_;
  int status_ = 0;
  HttpHeaders headers_;
  SseParser parser_;
  std::vector<SseEvent> ready_;
  size_t next_ready_ = 0;
  bool ended_ = false;
};

}  // namespace sluice::client

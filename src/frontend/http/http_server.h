#pragma once
// A reusable asynchronous HTTP/1.1 server (Boost.Beast on Boost.Asio): a few io threads
// serve any number of keep-alive connections (no thread per connection or stream). Requests
// go to a Router; handlers reply through a ResponseWriter, once or as a chunked stream.
// The same class serves KServe/OpenAI on the HTTP port and /metrics on the metrics port.
//
// Limits (each an option): request body (Content-Length or chunked; over it -> 413 and the
// connection closes), header size (-> 431), read timeout (idle keep-alive connections and
// slow request senders are closed). Malformed HTTP -> 400 and close.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "frontend/http/router.h"

namespace sluice::http {

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0: an ephemeral port; port() tells which
  int io_threads = 2;
  int blocking_threads = 4;  // run blocking handler work (ResponseWriter::PostBlocking)
  uint64_t max_body_bytes = 64ull << 20;
  uint32_t max_header_bytes = 16u << 10;
  // Max time to receive one request, and max idle time of a keep-alive connection.
  std::chrono::milliseconds read_timeout{30000};
  // Open connections at most; one more is accepted and closed at once (the client sees the
  // connection reset), so that idle connections cannot take every descriptor of the process
  // (the gRPC listener and the stubs' links need them too).
  size_t max_connections = 4096;
};

class HttpServer {
 public:
  // Binds and listens (errors: bad address, port in use); serves nothing until Start().
  static Result<std::unique_ptr<HttpServer>> Create(const HttpServerOptions& options, Router router);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the io threads and accepting.
  Status Start();
  // Stops accepting, closes every connection (open streams see OnDisconnect), joins the io
  // threads. Idempotent. Writers used after Stop do nothing.
  void Stop();

  uint16_t port() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::http

#pragma once
// How a handler answers one HTTP request: either one complete reply, or a streaming reply
// (chunked transfer encoding) whose chunks may be written later from any thread. Also tells
// the handler when the client goes away before the reply is complete.
//
// Thread-safety: every method may be called from any thread, concurrently. Writes are
// queued in call order and sent by the connection's io thread; they never block.
// Lifetime: handlers hold the writer as a shared_ptr as long as they need it. Dropping the
// last reference without a reply sends 500; dropping it mid-stream ends the stream.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace sluice::http {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends one complete reply with Content-Length. False if a reply was already started
  // (nothing is sent then) or the client is gone.
  virtual bool Send(int status, std::string content_type, std::string body,
                    HeaderList headers = {}) = 0;

  // Starts a chunked reply: status and headers go out now, chunks follow. False if a reply
  // was already started or the client is gone.
  virtual bool StartStream(int status, std::string content_type, HeaderList headers = {}) = 0;
  // Queues one chunk (empty data is ignored). False if no stream is open or the client is gone.
  virtual bool WriteChunk(std::string data) = 0;
  // Ends the chunked reply (the terminating zero-length chunk). Idempotent.
  virtual void EndStream() = 0;

  // `callback` runs once if the client disconnects (or the server stops) before the reply
  // is complete; at once, on the calling thread, if that already happened. It runs on an
  // io thread and must not block. Never runs after the reply completed.
  virtual void OnDisconnect(std::function<void()> callback) = 0;
  virtual bool Disconnected() const = 0;

  // Runs `fn` on the connection's io thread (for work a core thread must not do, such as
  // rendering a response). An exception escaping `fn` becomes a 500 reply or ends the stream.
  virtual void Post(std::function<void()> fn) = 0;
  // Runs `fn` on the server's pool for blocking calls (model load/unload, which may take
  // seconds), never on an io thread. Exceptions are handled as for Post.
  virtual void PostBlocking(std::function<void()> fn) = 0;

  // Helpers over Send.
  bool SendJson(int status, const nlohmann::json& body, HeaderList headers = {});
  // `{"error": message}` with HttpStatusFromCode(status.code()).
  bool SendError(const Status& status);
  bool SendError(int http_status, const std::string& message);
};

}  // namespace sluice::http

#pragma once
// One connection of HttpServer (http_server.h), and the state the server shares with its
// connections. Internal to the HTTP frontend: http_server.cc accepts connections and stops
// them; http_session.cc reads requests, dispatches them to the Router and writes the replies
// that the request's ResponseWriter (a ConnectionWriter) sends.

#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// After <utility>: Boost.Asio 1.74's awaitable.hpp uses std::exchange without including it.
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/thread_annotations.h"
#include "frontend/http/http_server.h"
#include "frontend/http/router.h"

namespace sluice::http {

class Session;

// State shared by the server, its sessions and their writers.
struct ServerShared {
  // Constant after construction. The io_context is shared (not owned by HttpServer alone)
  // because a writer kept by a core thread keeps its Session, whose socket needs it.
  std::shared_ptr<boost::asio::io_context> ioc = std::make_shared<boost::asio::io_context>();
  std::unique_ptr<boost::asio::thread_pool> blocking_pool;  // joined by Stop()
  HttpServerOptions options;
  Router router;
  // Self-synchronised.
  std::atomic<bool> stopped{false};
  Mutex mu;
  std::vector<std::weak_ptr<Session>> sessions SLUICE_GUARDED_BY(mu);

  // Posts fn onto `executor` (a session's strand, the blocking pool) unless Stop has drained
  // the server: once its io threads and pool are joined, a queued handler would never run,
  // and, holding its Session, which holds this object and so the io_context that queues the
  // handler, would keep all three alive for good (LeakSanitizer saw such a cycle when a
  // backend's reply arrived after Stop).
  template <typename Executor, typename F>
  void Post(Executor&& executor, F&& fn) SLUICE_EXCLUDES(post_mu) {
    MutexLock lock(post_mu);
    if (!drained) boost::asio::post(std::forward<Executor>(executor), std::forward<F>(fn));
  }
  Mutex post_mu;
  bool drained SLUICE_GUARDED_BY(post_mu) = false;
};

class ConnectionWriter;

// One TCP connection. Every member is touched only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<ServerShared> shared)
      : shared_(std::move(shared)), stream_(std::move(socket)) {}

  void Start() {
    boost::asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }
  // Posts fn onto this connection's strand.
  template <typename F>
  void PostToStrand(F&& fn) {
    shared_->Post(stream_.get_executor(), std::forward<F>(fn));
  }
  void Close();

  // Called (on the strand) by the writer.
  void QueueWrite(std::string data, bool completes_response);

 private:
  void DoRead();
  void OnHeader(boost::beast::error_code ec);
  void ReadBody();
  void OnRead(boost::beast::error_code ec);
  void HandleReadError(boost::beast::error_code ec);
  void SendFatal(int status, const std::string& message);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec);
  void OnResponseComplete();
  void DoWatch();
  void OnWatch(boost::beast::error_code ec, size_t n);
  void FireDisconnect();

  std::shared_ptr<ServerShared> shared_;  // declared first: outlives stream_
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  // Data, and whether it completes the response. A deque: appending keeps the strings of the
  // write in flight in place.
  std::deque<std::pair<std::string, bool>> out_;
  size_t queued_bytes_ = 0;  // in out_
  size_t in_flight_ = 0;     // items at the front of out_ in the write in flight
  bool writing_ = false;
  bool busy_ = false;  // a request is being answered
  bool keep_alive_ = true;
  bool closed_ = false;
  bool watch_pending_ = false;  // a read that watches for disconnects is outstanding
  bool read_after_watch_ = false;
  bool peer_finished_ = false;  // the client sent EOF: what it sent is answered, then close
  std::weak_ptr<ConnectionWriter> writer_;
};

}  // namespace sluice::http

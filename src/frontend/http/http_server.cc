#include "frontend/http/http_server.h"

#include <atomic>
#include <deque>
#include <exception>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/thread_annotations.h"
#include "frontend/http/http_status.h"

namespace sluice::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

// Bytes a connection may buffer (pipelined requests) while a reply is in progress.
constexpr size_t kMaxBufferedWhileBusy = 64 << 10;
// Reply bytes queued for a client that does not read fast enough; past this the connection
// is closed (the handler sees OnDisconnect and cancels), so a stalled reader cannot make
// the server buffer a whole stream.
constexpr size_t kMaxQueuedReplyBytes = 64u << 20;
constexpr size_t kMaxGatheredWrites = 64;  // queued pieces in one write

std::string SanitizeHeaderText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    if (c != '\r' && c != '\n') out.push_back(c);
  return out;
}

// "HTTP/1.1 200 OK\r\n...\r\n\r\n": content_length set -> Content-Length, else chunked.
std::string FormatHead(int status, std::string_view content_type, const HeaderList& headers,
                       std::optional<size_t> content_length, bool keep_alive) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
  head += std::string(bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(status))));
  head += "\r\nServer: sluice\r\n";
  if (!content_type.empty()) head += "Content-Type: " + SanitizeHeaderText(content_type) + "\r\n";
  if (content_length) {
    head += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  } else {
    head += "Transfer-Encoding: chunked\r\n";
  }
  head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (const auto& [name, value] : headers)
    head += SanitizeHeaderText(name) + ": " + SanitizeHeaderText(value) + "\r\n";
  head += "\r\n";
  return head;
}

std::string FormatChunk(std::string_view data) {
  char size[32];
  int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string out(size, static_cast<size_t>(n));
  out.append(data);
  out.append("\r\n");
  return out;
}

}  // namespace

class Session;

// State shared by the server, its sessions and their writers.
struct ServerShared {
  // Constant after construction. The io_context is shared (not owned by HttpServer alone)
  // because a writer kept by a core thread keeps its Session, whose socket needs it.
  std::shared_ptr<net::io_context> ioc = std::make_shared<net::io_context>();
  std::unique_ptr<net::thread_pool> blocking_pool;  // joined by Stop()
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
    if (!drained) net::post(std::forward<Executor>(executor), std::forward<F>(fn));
  }
  Mutex post_mu;
  bool drained SLUICE_GUARDED_BY(post_mu) = false;
};

class ConnectionWriter;

// One TCP connection. Every member is touched only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, std::shared_ptr<ServerShared> shared)
      : shared_(std::move(shared)), stream_(std::move(socket)) {}

  void Start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->DoRead(); });
  }
  // Posts fn onto this connection's strand.
  template <typename F>
  void PostToStrand(F&& fn) {
    shared_->Post(stream_.get_executor(), std::forward<F>(fn));
  }
  void Close();

  // Called (on the strand) by the writer.
  void QueueWrite(std::string data, bool completes_response);
  void WriterDone(ConnectionWriter* writer);

 private:
  void DoRead();
  void OnHeader(beast::error_code ec);
  void ReadBody();
  void OnRead(beast::error_code ec);
  void HandleReadError(beast::error_code ec);
  void SendFatal(int status, const std::string& message);
  void DoWrite();
  void OnWrite(beast::error_code ec);
  void OnResponseComplete();
  void DoWatch();
  void OnWatch(beast::error_code ec, size_t n);
  void FireDisconnect();

  std::shared_ptr<ServerShared> shared_;  // declared first: outlives stream_
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  // Data, and whether it completes the response. A deque: appending keeps the strings of the
  // write in flight in place.
  std::deque<std::pair<std::string, bool>> out_;
  size_t queued_bytes_ = 0;  // in out_
  size_t in_flight_ = 0;     // items at the front of out_ in the write in flight
  bool writing_ = false;
  bool busy_ = false;            // a request is being answered
  bool keep_alive_ = true;
  bool closed_ = false;
  bool watch_pending_ = false;   // a read that watches for disconnects is outstanding
  bool read_after_watch_ = false;
  bool peer_finished_ = false;   // the client sent EOF: what it sent is answered, then close
  std::weak_ptr<ConnectionWriter> writer_;
};

// The ResponseWriter of one request on one Session.
class ConnectionWriter : public ResponseWriter, public std::enable_shared_from_this<ConnectionWriter> {
 public:
  ConnectionWriter(std::shared_ptr<Session> session, std::shared_ptr<ServerShared> shared, bool keep_alive)
      : session_(std::move(session)), shared_(std::move(shared)), keep_alive_(keep_alive) {}

  ~ConnectionWriter() override {
    std::string data;
    {
      MutexLock lock(mu_);
      if (state_ == State::kNone && !disconnected_) {
        std::string body = ErrorBody("handler sent no reply");
        data = FormatHead(500, "application/json", {}, body.size(), keep_alive_) + body;
      } else if (state_ == State::kStreaming && !disconnected_) {
        data = "0\r\n\r\n";
      } else {
        return;
      }
      state_ = State::kDone;
    }
    Enqueue(std::move(data), true);
  }

  bool Send(int status, std::string content_type, std::string body, HeaderList headers) override {
    std::string data;
    {
      MutexLock lock(mu_);
      if (state_ != State::kNone || disconnected_) return false;
      state_ = State::kDone;
      data = FormatHead(status, content_type, headers, body.size(), keep_alive_);
    }
    data += body;
    Enqueue(std::move(data), true);
    return true;
  }

  bool StartStream(int status, std::string content_type, HeaderList headers) override {
    MutexLock lock(mu_);
    if (state_ != State::kNone || disconnected_) return false;
    state_ = State::kStreaming;
    Enqueue(FormatHead(status, content_type, headers, std::nullopt, keep_alive_), false);
    return true;
  }

  bool WriteChunk(std::string data) override {
    MutexLock lock(mu_);
    if (state_ != State::kStreaming || disconnected_) return false;
    if (!data.empty()) Enqueue(FormatChunk(data), false);
    return true;
  }

  void EndStream() override {
    MutexLock lock(mu_);
    if (state_ != State::kStreaming) return;
    state_ = State::kDone;
    if (!disconnected_) Enqueue("0\r\n\r\n", true);
  }

  void OnDisconnect(std::function<void()> callback) override {
    {
      MutexLock lock(mu_);
      if (!disconnected_) {
        if (completed_) return;
        callbacks_.push_back(std::move(callback));
        // Cancellable work registered after the client finished sending: it left (see
        // Session::OnWatch), so the session closes and runs this callback.
        if (peer_finished_) session_->PostToStrand([session = session_] { session->Close(); });
        return;
      }
    }
    callback();
  }

  bool Disconnected() const override {
    MutexLock lock(mu_);
    return disconnected_;
  }

  void Post(std::function<void()> fn) override {
    if (shared_->stopped.load()) return;
    session_->PostToStrand([self = shared_from_this(), fn = std::move(fn)] { self->RunGuarded(fn); });
  }

  void PostBlocking(std::function<void()> fn) override {
    if (shared_->stopped.load()) return;
    shared_->Post(*shared_->blocking_pool, [self = shared_from_this(), fn = std::move(fn)] { self->RunGuarded(fn); });
  }

  // Called by the session on its strand.
  void MarkDisconnected() {
    std::vector<std::function<void()>> callbacks;
    {
      MutexLock lock(mu_);
      if (disconnected_ || completed_) return;
      disconnected_ = true;
      callbacks.swap(callbacks_);
    }
    for (auto& cb : callbacks) {
      try {
        cb();
      } catch (...) {
        // A disconnect callback must not take the io thread down.
      }
    }
  }
  // The client finished sending (EOF). Returns whether the request in progress is
  // cancellable work (it registered OnDisconnect), which the session then cancels.
  bool MarkPeerFinished() {
    MutexLock lock(mu_);
    peer_finished_ = true;
    return !callbacks_.empty();
  }
  void MarkCompleted() {
    MutexLock lock(mu_);
    completed_ = true;
    callbacks_.clear();
  }

 private:
  enum class State { kNone, kStreaming, kDone };

  void RunGuarded(const std::function<void()>& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      Abort(std::string("internal error: ") + e.what());
    } catch (...) {
      Abort("internal error");
    }
  }

  // A failure after the handler returned: a 500 if nothing was sent, else end the stream.
  void Abort(const std::string& message) {
    if (!SendError(500, message)) EndStream();
  }

  void Enqueue(std::string data, bool completes_response) {
    if (shared_->stopped.load()) return;
    session_->PostToStrand([session = session_, data = std::move(data), completes_response]() mutable {
      session->QueueWrite(std::move(data), completes_response);
    });
  }

  // Constant after construction.
  const std::shared_ptr<Session> session_;
  const std::shared_ptr<ServerShared> shared_;
  const bool keep_alive_;
  mutable Mutex mu_;
  State state_ SLUICE_GUARDED_BY(mu_) = State::kNone;
  bool disconnected_ SLUICE_GUARDED_BY(mu_) = false;
  bool completed_ SLUICE_GUARDED_BY(mu_) = false;
  bool peer_finished_ SLUICE_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> callbacks_ SLUICE_GUARDED_BY(mu_);
};

void Session::DoRead() {
  if (closed_) return;
  // After the client's EOF only what it sent before is parsed: a read would wait for an
  // event that never comes (the EOF was already consumed by the watching read).
  if (peer_finished_ && buffer_.size() == 0) return Close();
  busy_ = false;
  parser_.emplace();
  parser_->body_limit(shared_->options.max_body_bytes);
  parser_->header_limit(shared_->options.max_header_bytes);
  stream_.expires_after(shared_->options.read_timeout);
  bhttp::async_read_header(stream_, buffer_, *parser_,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
}

void Session::OnHeader(beast::error_code ec) {
  if (ec) return HandleReadError(ec);
  auto expect = parser_->get()[bhttp::field::expect];
  if (beast::iequals(expect, "100-continue")) {
    auto msg = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
    net::async_write(stream_, net::buffer(*msg),
                     [self = shared_from_this(), msg](beast::error_code wec, size_t) {
                       if (wec) return self->Close();
                       self->ReadBody();
                     });
    return;
  }
  ReadBody();
}

void Session::ReadBody() {
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
}

void Session::HandleReadError(beast::error_code ec) {
  if (ec == bhttp::error::body_limit)
    return SendFatal(413, "request body exceeds the limit of " +
                              std::to_string(shared_->options.max_body_bytes) + " bytes");
  if (ec == bhttp::error::header_limit)
    return SendFatal(431, "request header exceeds the limit of " +
                              std::to_string(shared_->options.max_header_bytes) + " bytes");
  if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() && ec != bhttp::error::end_of_stream &&
      ec != bhttp::error::partial_message)
    return SendFatal(400, "malformed HTTP request: " + ec.message());
  Close();  // end of stream, timeout, reset
}

void Session::SendFatal(int status, const std::string& message) {
  busy_ = true;
  keep_alive_ = false;
  std::string body = ErrorBody(message);
  stream_.expires_after(shared_->options.read_timeout);
  QueueWrite(FormatHead(status, "application/json", {}, body.size(), false) + body, true);
}

void Session::OnRead(beast::error_code ec) {
  if (ec) return HandleReadError(ec);
  bhttp::request<bhttp::string_body> msg = parser_->release();
  parser_.reset();
  keep_alive_ = msg.keep_alive() && !shared_->stopped.load();
  busy_ = true;
  stream_.expires_never();  // a reply may stream for long; disconnects are watched instead

  HttpRequest request;
  request.method = std::string(msg.method_string());
  request.target = std::string(msg.target());
  const size_t q = request.target.find('?');
  request.path = request.target.substr(0, q);
  if (q != std::string::npos) request.query = request.target.substr(q + 1);
  for (const auto& field : msg) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers[name] = std::string(field.value());
  }
  request.body = std::move(msg.body());

  auto writer = std::make_shared<ConnectionWriter>(shared_from_this(), shared_, keep_alive_);
  writer_ = writer;
  if (peer_finished_) writer->MarkPeerFinished();  // a pipelined request sent before EOF
  DoWatch();
  shared_->router.Dispatch(request, writer);
}

void Session::QueueWrite(std::string data, bool completes_response) {
  if (closed_) return;
  queued_bytes_ += data.size();
  out_.emplace_back(std::move(data), completes_response);
  if (out_.size() > 1 && queued_bytes_ > kMaxQueuedReplyBytes) return Close();  // one big reply is fine
  if (!writing_) DoWrite();
}

void Session::DoWrite() {
  writing_ = true;
  // Everything queued goes out in one gather write, up to the end of the response: a fast
  // stream's events (each its own segment with TCP_NODELAY) then share segments and syscalls.
  std::vector<net::const_buffer> buffers;
  in_flight_ = 0;
  for (const auto& [data, completes] : out_) {
    buffers.push_back(net::buffer(data));
    ++in_flight_;
    if (completes || in_flight_ == kMaxGatheredWrites) break;
  }
  // A write that makes no progress for read_timeout means the client stopped reading: the
  // stream closes and the watching read reports the disconnect.
  stream_.expires_after(shared_->options.read_timeout);
  net::async_write(stream_, buffers,
                   [self = shared_from_this()](beast::error_code ec, size_t) { self->OnWrite(ec); });
}

void Session::OnWrite(beast::error_code ec) {
  writing_ = false;
  if (ec || closed_) {
    out_.clear();
    queued_bytes_ = 0;
    return Close();
  }
  bool completes = false;
  for (; in_flight_ > 0 && !out_.empty(); --in_flight_) {
    completes = out_.front().second;
    queued_bytes_ -= out_.front().first.size();
    out_.pop_front();
  }
  if (completes) {
    out_.clear();  // nothing of this response may follow its end
    queued_bytes_ = 0;
    return OnResponseComplete();
  }
  if (!out_.empty()) DoWrite();
}

void Session::OnResponseComplete() {
  if (auto w = writer_.lock()) w->MarkCompleted();
  writer_.reset();
  busy_ = false;
  if (!keep_alive_ || shared_->stopped.load()) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return Close();
  }
  if (watch_pending_) {
    // The next request may already sit in buffer_ (the client sent it as soon as it saw
    // the end of this reply): stop the watching read and parse from OnWatch.
    read_after_watch_ = true;
    beast::error_code ignored;
    stream_.socket().cancel(ignored);
    return;
  }
  DoRead();
}

void Session::DoWatch() {
  if (closed_ || watch_pending_ || peer_finished_ || buffer_.size() >= kMaxBufferedWhileBusy) return;
  watch_pending_ = true;
  stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->OnWatch(ec, n);
  });
}

void Session::OnWatch(beast::error_code ec, size_t n) {
  watch_pending_ = false;
  if (ec == net::error::operation_aborted && read_after_watch_ && !closed_) {
    read_after_watch_ = false;
    return DoRead();
  }
  if (ec == net::error::eof && !closed_) {
    // The client finished sending: a half-close (shutdown(SHUT_WR) after its requests) or a
    // full close, which TCP does not tell apart until a write fails. What costs little is
    // answered either way: the reply in progress and the requests already received are
    // served in order, then the connection closes (DoRead meets the EOF). Cancellable work
    // (an inference that registered OnDisconnect) is cancelled at once instead, as Triton,
    // vLLM, nginx and Go's net/http do: a client that left must not hold a model for
    // minutes, and that outweighs the rare client that half-closes and waits.
    peer_finished_ = true;
    if (busy_) {
      auto writer = writer_.lock();
      if (writer && writer->MarkPeerFinished()) return Close();
      return;
    }
    if (!read_after_watch_) return Close();
    read_after_watch_ = false;
    return DoRead();
  }
  if (ec) return Close();  // fires the disconnect callbacks if a reply is in progress
  buffer_.commit(n);
  if (busy_) return DoWatch();
  if (read_after_watch_) {
    read_after_watch_ = false;
    DoRead();
  }
}

void Session::FireDisconnect() {
  if (auto w = writer_.lock()) w->MarkDisconnected();
}

void Session::Close() {
  if (closed_) return;
  closed_ = true;
  if (busy_) FireDisconnect();
  writer_.reset();
  if (!writing_) {  // else the buffer in flight is freed by OnWrite
    out_.clear();
    queued_bytes_ = 0;
  }
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.socket().close(ignored);
}

struct HttpServer::Impl {
  std::shared_ptr<ServerShared> shared = std::make_shared<ServerShared>();
  net::io_context& ioc = *shared->ioc;
  // The acceptor, its retry timer and Stop's close run on one strand.
  net::strand<net::io_context::executor_type> accept_strand = net::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  // An accept that failed (EMFILE, ENFILE, ENOBUFS) is retried after a pause, not at once:
  // the pending connection stays in the backlog and an immediate retry fails again, which
  // spun a core for as long as the descriptors were exhausted.
  net::steady_timer accept_retry{accept_strand};
  static constexpr std::chrono::milliseconds kAcceptRetry{50};
  uint16_t port = 0;
  Mutex stop_mu;  // serialises Start and Stop
  std::vector<std::thread> threads SLUICE_GUARDED_BY(stop_mu);
  bool started SLUICE_GUARDED_BY(stop_mu) = false;

  void DoAccept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || shared->stopped.load()) return;
        // e.g. EMFILE: keep serving the open connections, try again shortly.
        accept_retry.expires_after(kAcceptRetry);
        accept_retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec && !shared->stopped.load()) DoAccept();
        });
        return;
      }
      // A streamed reply is many small writes: with Nagle on, once a kept-alive connection
      // is past its start each write waits for the client's delayed ACK (40 ms), and the
      // tokens of a stream arrive together at the end (seen with perf_analyzer/genai-perf).
      beast::error_code nodelay_ec;
      socket.set_option(tcp::no_delay(true), nodelay_ec);
      std::shared_ptr<Session> session;
      {
        MutexLock lock(shared->mu);
        if (shared->stopped.load()) return;
        std::erase_if(shared->sessions, [](const std::weak_ptr<Session>& w) { return w.expired(); });
        if (shared->sessions.size() < shared->options.max_connections) {
          session = std::make_shared<Session>(std::move(socket), shared);
          shared->sessions.push_back(session);
        } else {
          beast::error_code ignored;
          socket.close(ignored);  // over the cap: refused; the listener keeps accepting
        }
      }
      if (session) session->Start();
      DoAccept();
    });
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Create(const HttpServerOptions& options, Router router) {
  if (options.blocking_threads < 1 || options.blocking_threads > 256)
    return InvalidArgument("blocking_threads must be in [1, 256], got " + std::to_string(options.blocking_threads));
  if (options.io_threads < 1 || options.io_threads > 256)
    return InvalidArgument("io_threads must be in [1, 256], got " + std::to_string(options.io_threads));
  auto impl = std::make_unique<Impl>();
  impl->shared->options = options;
  impl->shared->router = std::move(router);
  impl->shared->blocking_pool = std::make_unique<net::thread_pool>(static_cast<size_t>(options.blocking_threads));
  beast::error_code ec;
  auto address = net::ip::make_address(options.address, ec);
  if (ec) return InvalidArgument("invalid HTTP address '" + options.address + "'");
  tcp::endpoint endpoint(address, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Unavailable("cannot listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                       ec.message());
  impl->port = impl->acceptor.local_endpoint(ec).port();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

Status HttpServer::Start() {
  MutexLock lock(impl_->stop_mu);
  if (impl_->started) return InvalidArgument("HTTP server already started");
  if (impl_->shared->stopped.load()) return InvalidArgument("HTTP server already stopped");
  impl_->started = true;
  impl_->DoAccept();
  for (int i = 0; i < impl_->shared->options.io_threads; ++i)
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  MutexLock lock(impl_->stop_mu);
  std::vector<std::shared_ptr<Session>> sessions;
  {
    MutexLock shared_lock(impl_->shared->mu);
    if (impl_->shared->stopped.exchange(true)) return;
    for (auto& w : impl_->shared->sessions)
      if (auto s = w.lock()) sessions.push_back(std::move(s));
    impl_->shared->sessions.clear();
  }
  // Teardown order: stop accepting, close every connection on its own strand (open
  // streams get their disconnect callback), then let the io threads run dry and join them.
  net::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_retry.cancel();
  });
  for (auto& s : sessions) s->PostToStrand([s] { s->Close(); });
  sessions.clear();
  if (!impl_->started) {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  }
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->shared->blocking_pool->join();  // in-flight loads/unloads finish (they are bounded)
  // Nothing is queued from here on (ServerShared::Post); what was queued after the io threads
  // ran dry (replies and closes posted by the pool or a backend's thread) runs here, on this
  // thread, so that no handler keeps a Session and the io_context alive.
  {
    MutexLock post_lock(impl_->shared->post_mu);
    impl_->shared->drained = true;
  }
  impl_->ioc.restart();
  impl_->ioc.poll();
}

uint16_t HttpServer::port() const { return impl_->port; }

}  // namespace sluice::http

#include "frontend/http/http_session.h"

#include <cctype>
#include <cstdio>
#include <exception>
#include <functional>

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

}  // namespace sluice::http

#include "frontend/http/http_server.h"

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "frontend/http/http_session.h"

namespace sluice::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;

}  // namespace

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

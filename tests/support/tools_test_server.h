#pragma once
// A tiny in-test HTTP server for the tools' tests: a thread accepts loopback connections
// and answers each request with raw bytes chosen by the test (so chunk boundaries, delays,
// closes and stalls are exactly as the test needs them). Every thread is joined.

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "tools/client/endpoint.h"

namespace sluice::client::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Req = http::request<http::string_body>;

// Handler: writes the reply on the socket; returns false to close the connection after it.
using Handler = std::function<bool(const Req&, tcp::socket&)>;

class TestServer {
 public:
  explicit TestServer(Handler handler)
      : handler_(std::move(handler)), acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    stop_ = true;
    beast::error_code ec;
    // Wake the blocking accept with a throwaway connection.
    tcp::socket s(ioc_);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
    for (auto& t : conn_threads_) t.join();
  }
  Endpoint endpoint() const { return {"127.0.0.1", acceptor_.local_endpoint().port()}; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    while (true) {
      tcp::socket socket(ioc_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (stop_ || ec) return;
      connections_++;
      std::lock_guard<std::mutex> lock(mu_);
      conn_threads_.emplace_back([this, s = std::move(socket)]() mutable { Connection(s); });
    }
  }
  void Connection(tcp::socket& socket) {
    beast::flat_buffer buffer;
    while (true) {
      Req req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      if (!handler_(req, socket)) break;
    }
    beast::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
  }

  Handler handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::mutex mu_;
  std::vector<std::thread> conn_threads_;
  std::thread thread_;
};

inline void WriteRaw(tcp::socket& s, std::string_view bytes) {
  beast::error_code ec;
  asio::write(s, asio::buffer(bytes.data(), bytes.size()), ec);
}

inline std::string Chunk(std::string_view data) {
  char size[32];
  snprintf(size, sizeof size, "%zx\r\n", data.size());
  return std::string(size) + std::string(data) + "\r\n";
}

}  // namespace sluice::client::testing

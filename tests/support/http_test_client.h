#pragma once
// A small synchronous HTTP/1.1 client (Boost.Beast) for the HTTP frontend tests: keep-alive
// requests, and raw byte exchanges for malformed or partial traffic.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::testing {

struct HttpResult {
  int status = 0;  // 0: the connection failed or was closed
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class TestHttpClient {
 public:
  explicit TestHttpClient(uint16_t port) : socket_(ioc_) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    SetTimeout(std::chrono::seconds(10));
  }

  // Sends one request on this connection and reads the whole reply.
  HttpResult Request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    boost::beast::error_code ec;
    http::write(socket_, req, ec);
    if (ec) return {};
    return ReadResponse();
  }

  // Parses one response from the socket (raw recv, so the receive timeout applies).
  HttpResult ReadResponse() {
    namespace http = boost::beast::http;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 30);
    parser.eager(true);
    while (!parser.is_done()) {
      if (!pending_.empty()) {
        boost::beast::error_code ec;
        const size_t used = parser.put(boost::asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec && ec != http::error::need_more) return {};
        if (parser.is_done()) break;
        if (used > 0 && !ec) continue;
      }
      char buf[65536];
      const ssize_t n = ::recv(socket_.native_handle(), buf, sizeof(buf), 0);
      if (n <= 0) {
        if (n == 0 && parser.is_header_done() && parser.need_eof()) {
          boost::beast::error_code ec;
          parser.put_eof(ec);
          if (!ec) break;
        }
        return {};
      }
      pending_.append(buf, static_cast<size_t>(n));
    }
    HttpResult r;
    r.status = static_cast<int>(parser.get().result_int());
    for (const auto& f : parser.get()) {
      std::string name(f.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      r.headers[name] = std::string(f.value());
    }
    r.body = parser.get().body();
    return r;
  }

  void WriteRaw(const std::string& bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
  }
  // Reads whatever arrives until `needle` is seen, the peer closes, or the timeout passes.
  std::string ReadUntil(const std::string& needle) {
    std::string got = std::move(pending_);
    pending_.clear();
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
      const ssize_t n = ::recv(socket_.native_handle(), buf, sizeof(buf), 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  // Reads until the peer closes (or the timeout).
  std::string ReadAll() { return ReadUntil(std::string("\0never\0", 7)); }

  void SetTimeout(std::chrono::milliseconds t) {
    struct timeval tv;
    tv.tv_sec = static_cast<long>(t.count() / 1000);
    tv.tv_usec = static_cast<long>((t.count() % 1000) * 1000);
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  }
  // Half-closes: the server sees EOF and the client can still read.
  void ShutdownWrite() {
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  }
  void Close() {
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  std::string pending_;  // received, not yet parsed
};

}  // namespace sluice::testing

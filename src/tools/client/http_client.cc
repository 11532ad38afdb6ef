#include "tools/client/http_client.h"

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <exception>
#include <limits>

namespace sluice::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string FindHeader(const HttpHeaders& headers, std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return "";
}

template <class Fields>
HttpHeaders CopyHeaders(const Fields& fields) {
  HttpHeaders out;
  for (const auto& f : fields) out.emplace_back(std::string(f.name_string()), std::string(f.value()));
  return out;
}

// Errors that mean "the server closed a kept-alive connection before we used it".
bool IsStaleConnection(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe;
}

}  // namespace

// One TCP connection and its io_context. Each operation runs asynchronously with a deadline
// (beast::tcp_stream's timer) and then drives the io_context to completion, which gives
// synchronous calls with timeouts.
class HttpConnection {
 public:
  HttpConnection(const Endpoint& endpoint, const HttpClientOptions& options)
      : endpoint_(endpoint), options_(options) {}
  ~HttpConnection() { Close(); }

  Status Connect() {
    tcp::resolver resolver(ioc_);
    tcp::resolver::results_type results;
    beast::error_code ec = Run([&](auto handler) {
      resolver.async_resolve(endpoint_.host, std::to_string(endpoint_.port),
                             [&results, handler](beast::error_code e, tcp::resolver::results_type r) {
                               results = std::move(r);
                               handler(e);
                             });
    });
    if (ec) return Unavailable("resolve " + endpoint_.ToString() + ": " + ec.message());
    stream_.expires_after(options_.connect_timeout);
    ec = Run([&](auto handler) {
      stream_.async_connect(results, [handler](beast::error_code e, const tcp::endpoint&) {
        handler(e);
      });
    });
    if (ec) return Unavailable("connect " + endpoint_.ToString() + ": " + ec.message());
    int one = 1;
    setsockopt(stream_.socket().native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return Status::Ok();
  }

  beast::error_code Write(http::request<http::string_body>& req) {
    stream_.expires_after(options_.io_timeout);
    return Run([&](auto handler) {
      http::async_write(stream_, req, [handler](beast::error_code e, size_t) { handler(e); });
    });
  }

  beast::error_code ReadResponse(http::response_parser<http::string_body>& parser) {
    stream_.expires_after(options_.io_timeout);
    return Run([&](auto handler) {
      http::async_read(stream_, buffer_, parser,
                       [handler](beast::error_code e, size_t) { handler(e); });
    });
  }

  template <class Parser>
  beast::error_code ReadHeader(Parser& parser) {
    stream_.expires_after(options_.io_timeout);
    return Run([&](auto handler) {
      http::async_read_header(stream_, buffer_, parser,
                              [handler](beast::error_code e, size_t) { handler(e); });
    });
  }

  beast::error_code ReadSome(http::response_parser<http::buffer_body>& parser) {
    stream_.expires_after(options_.io_timeout);
    return Run([&](auto handler) {
      http::async_read_some(stream_, buffer_, parser,
                            [handler](beast::error_code e, size_t) { handler(e); });
    });
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  Status ToStatus(const beast::error_code& ec, std::string_view what) const {
    std::string m = std::string(what) + " " + endpoint_.ToString() + ": " + ec.message();
    if (ec == beast::error::timeout) return DeadlineExceeded(m);
    if (ec == http::error::body_limit) return ResourceExhausted(m);
    return Unavailable(m);
  }

  int requests_done = 0;  // completed exchanges on this connection (reuse => retry allowed)
  bool keep_alive = true;
  std::unique_ptr<http::response_parser<http::buffer_body>> stream_parser;

 private:
  // Starts an operation with a handler(error_code) and runs the io_context until it is done.
  template <class Start>
  beast::error_code Run(Start start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  const Endpoint endpoint_;
  const HttpClientOptions options_;
  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
};

std::string HttpResponse::Header(std::string_view name) const { return FindHeader(headers, name); }

std::unique_ptr<HttpClient> HttpClient::Create(Endpoint endpoint, HttpClientOptions options) {
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(endpoint), options));
}

HttpClient::HttpClient(Endpoint endpoint, HttpClientOptions options)
    : endpoint_(std::move(endpoint)), options_(options) {}

HttpClient::~HttpClient() = default;

void HttpClient::Disconnect() { conn_.reset(); }

Result<HttpConnection*> HttpClient::Connection() {
  if (conn_ && conn_->keep_alive) return conn_.get();
  conn_.reset();
  auto conn = std::make_unique<HttpConnection>(endpoint_, options_);
  RETURN_IF_ERROR(conn->Connect());
  conn_ = std::move(conn);
  return conn_.get();
}

Result<HttpResponse> HttpClient::Get(std::string_view path) { return Request("GET", path, ""); }

Result<HttpResponse> HttpClient::Post(std::string_view path, std::string_view body,
                                      std::string_view content_type) {
  return Request("POST", path, body, {}, content_type);
}

namespace {

Result<http::request<http::string_body>> MakeRequest(const Endpoint& endpoint,
                                                     std::string_view method,
                                                     std::string_view path, std::string_view body,
                                                     const HttpHeaders& headers,
                                                     std::string_view content_type) {
  http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == http::verb::unknown) {
    return InvalidArgument("unknown HTTP method '" + std::string(method) + "'");
  }
  if (path.empty() || path.front() != '/') {
    return InvalidArgument("request path '" + std::string(path) + "' must start with '/'");
  }
  http::request<http::string_body> req{verb, std::string(path), 11};
  req.set(http::field::host, endpoint.ToString());
  req.set(http::field::user_agent, "sluice-client");
  req.keep_alive(true);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
    req.set(http::field::content_type, std::string(content_type));
    req.body() = std::string(body);
  }
  req.prepare_payload();
  return req;
}

}  // namespace

Result<HttpResponse> HttpClient::Request(std::string_view method, std::string_view path,
                                         std::string_view body, const HttpHeaders& headers,
                                         std::string_view content_type) {
  try {
    ASSIGN_OR_RETURN(auto req, MakeRequest(endpoint_, method, path, body, headers, content_type));
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(HttpConnection * conn, Connection());
      bool reused = conn->requests_done > 0;
      beast::error_code ec = conn->Write(req);
      http::response_parser<http::string_body> parser;
      // Beast 1.74 compares Content-Length against an optional limit incorrectly, so the
      // declared length is checked here and the limit only bounds chunked bodies.
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      if (!ec) ec = conn->ReadHeader(parser);
      if (!ec && parser.content_length() && *parser.content_length() > options_.max_body_bytes) {
        conn_.reset();
        return ResourceExhausted("response to " + std::string(method) + " " + std::string(path) +
                                 ": body of " + std::to_string(*parser.content_length()) +
                                 " bytes exceeds the limit of " +
                                 std::to_string(options_.max_body_bytes));
      }
      if (!ec) {
        parser.body_limit(options_.max_body_bytes);
        ec = conn->ReadResponse(parser);
      }
      if (ec) {
        Status st = conn->ToStatus(ec, std::string(method) + " " + std::string(path) + " to");
        conn_.reset();
        if (reused && attempt == 0 && IsStaleConnection(ec)) continue;
        return st;
      }
      auto res = parser.release();
      HttpResponse out;
      out.status = static_cast<int>(res.result_int());
      out.headers = CopyHeaders(res);
      out.body = std::move(res.body());
      conn->requests_done++;
      conn->keep_alive = res.keep_alive();
      if (!conn->keep_alive) conn_.reset();
      return out;
    }
  } catch (const std::exception& e) {
    conn_.reset();
    return Internal(std::string("HTTP client: ") + e.what());
  }
}

Result<std::unique_ptr<SseStream>> HttpClient::PostSse(std::string_view path,
                                                       std::string_view body,
                                                       const HttpHeaders& headers) {
  try {
    HttpHeaders all = headers;
    all.emplace_back("Accept", "text/event-stream");
    ASSIGN_OR_RETURN(auto req,
                     MakeRequest(endpoint_, "POST", path, body, all, "application/json"));
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(HttpConnection * conn, Connection());
      bool reused = conn->requests_done > 0;
      auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
      // SseParser bounds each event instead (boost::none misbehaves in Beast 1.74).
      parser->body_limit(std::numeric_limits<std::uint64_t>::max());
      beast::error_code ec = conn->Write(req);
      if (!ec) ec = conn->ReadHeader(*parser);
      if (ec) {
        Status st = conn->ToStatus(ec, "POST " + std::string(path) + " to");
        conn_.reset();
        if (reused && attempt == 0 && IsStaleConnection(ec)) continue;
        return st;
      }
      std::unique_ptr<SseStream> stream(new SseStream(std::move(conn_), options_.max_event_bytes));
      stream->status_ = static_cast<int>(parser->get().result_int());
      stream->headers_ = CopyHeaders(parser->get());
      stream->conn_->stream_parser = std::move(parser);
      return stream;
    }
  } catch (const std::exception& e) {
    conn_.reset();
    return Internal(std::string("HTTP client: ") + e.what());
  }
}

SseStream::SseStream(std::unique_ptr<HttpConnection> conn, size_t max_event_bytes)
    : conn_(std::move(conn)), parser_(max_event_bytes) {}

SseStream::~SseStream() { Close(); }

std::string SseStream::Header(std::string_view name) const { return FindHeader(headers_, name); }

void SseStream::Close() {
  if (conn_) conn_->Close();
  ended_ = true;
}

Result<bool> SseStream::ReadSome(std::string* out) {
  if (!conn_ || !conn_->stream_parser) return Unavailable("stream is closed");
  auto& parser = *conn_->stream_parser;
  if (parser.is_done()) return false;
  char buf[16384];
  parser.get().body().data = buf;
  parser.get().body().size = sizeof buf;
  beast::error_code ec;
  try {
    ec = conn_->ReadSome(parser);
  } catch (const std::exception& e) {
    return Internal(std::string("HTTP client: ") + e.what());
  }
  if (ec == http::error::need_buffer) ec = {};
  if (ec) return conn_->ToStatus(ec, "reading stream from");
  out->append(buf, sizeof buf - parser.get().body().size);
  return true;
}

Result<std::optional<SseEvent>> SseStream::Next() {
  while (true) {
    if (next_ready_ < ready_.size()) return std::optional<SseEvent>(std::move(ready_[next_ready_++]));
    ready_.clear();
    next_ready_ = 0;
    if (ended_) return std::optional<SseEvent>();
    std::string bytes;
    ASSIGN_OR_RETURN(bool more, ReadSome(&bytes));
    RETURN_IF_ERROR(parser_.Feed(bytes, &ready_));
    if (!more) {
      ended_ = true;
      if (parser_.HasPartialEvent()) return Unavailable("event stream ended inside an event");
    }
  }
}

Result<std::string> SseStream::ReadBody() {
  std::string body;
  const size_t limit = 64u << 20;
  while (!ended_) {
    ASSIGN_OR_RETURN(bool more, ReadSome(&body));
    if (!more) ended_ = true;
    if (body.size() > limit) return ResourceExhausted("response body exceeds 64 MiB");
  }
  return body;
}

}  // namespace sluice::client

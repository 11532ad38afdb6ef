// HttpClient and SseStream against a tiny in-test server: a thread that accepts loopback
// connections and answers each request with raw bytes chosen by the test, so that chunk
// boundaries, delays, closes and stalls are exactly as the test needs them.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "support/tools_test_server.h"
#include "tools/client/http_client.h"

namespace sluice::client {
namespace {

using namespace sluice::client::testing;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

bool Echo(const Req& req, tcp::socket& s) {
  std::string body = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                     std::string(req[http::field::content_type]) + " " + req.body();
  WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nX-Test: yes\r\n\r\n" + body);
  return true;
}

TEST(HttpClientTest, GetAndPostReuseOneConnection) {
  TestServer server(Echo);
  auto client = HttpClient::Create(server.endpoint());
  auto r1 = client->Get("/v2/health/live");
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_EQ(r1->status, 200);
  EXPECT_EQ(r1->body, "GET /v2/health/live  ");
  EXPECT_EQ(r1->Header("x-test"), "yes");
  auto r2 = client->Post("/v2/repository/index", R"({"ready":true})");
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_EQ(r2->body, R"(POST /v2/repository/index application/json {"ready":true})");
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientTest, ChunkedResponseBodyIsReassembled) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n");
    WriteRaw(s, Chunk("{\"error\":"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    WriteRaw(s, Chunk("\"no model\"}") + "0\r\n\r\n");
    return true;
  });
  auto client = HttpClient::Create(server.endpoint());
  auto r = client->Get("/v2/models/x");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, R"({"error":"no model"})");
}

TEST(HttpClientTest, StaleKeptAliveConnectionIsRetriedOnce) {
  // The server answers and then closes without saying "Connection: close".
  TestServer server([](const Req& req, tcp::socket& s) {
    Echo(req, s);
    return false;
  });
  auto client = HttpClient::Create(server.endpoint());
  ASSERT_TRUE(client->Get("/a").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto r = client->Get("/b");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "GET /b  ");
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpClientTest, BodyOverTheLimitIsRefused) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'));
    return true;
  });
  HttpClientOptions options;
  options.max_body_bytes = 50;
  auto client = HttpClient::Create(server.endpoint(), options);
  auto r = client->Get("/big");
  ASSERT_FALSE(r.ok()) << r->body.size();
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
}

TEST(HttpClientTest, SilentServerTimesOut) {
  std::promise<void> release;
  auto released = release.get_future().share();
  TestServer server([released](const Req&, tcp::socket&) {
    released.wait();
    return false;
  });
  HttpClientOptions options;
  options.io_timeout = std::chrono::milliseconds(150);
  auto client = HttpClient::Create(server.endpoint(), options);
  auto start = std::chrono::steady_clock::now();
  auto r = client->Get("/slow");
  auto took = std::chrono::steady_clock::now() - start;
  release.set_value();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST(HttpClientTest, RefusedConnectionIsUnavailable) {
  uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    port = a.local_endpoint().port();
  }
  auto client = HttpClient::Create({"127.0.0.1", port});
  auto r = client->Get("/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message().find("/work"), std::string::npos);
}

TEST(HttpClientTest, BadRequestArgumentsAreRefused) {
  auto client = HttpClient::Create({"127.0.0.1", 1});
  EXPECT_EQ(client->Request("BREW", "/", "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(client->Get("no-slash").status().code(), StatusCode::kInvalidArgument);
}

TEST(SseStreamTest, EventsSplitAcrossChunksAndWrites) {
  TestServer server([](const Req& req, tcp::socket& s) {
    EXPECT_EQ(req[http::field::accept], "text/event-stream");
    WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    WriteRaw(s, Chunk("data: {\"text_output\":\"He\"}\n\ndata: {\"text_"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    WriteRaw(s, Chunk("output\":\"llo\"}\r"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    WriteRaw(s, Chunk("\n\r\ndata: [DONE]\n\n") + "0\r\n\r\n");
    return true;
  });
  auto client = HttpClient::Create(server.endpoint());
  auto stream = client->PostSse("/v1/completions", "{}");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_EQ((*stream)->status(), 200);
  EXPECT_EQ((*stream)->Header("Content-Type"), "text/event-stream");
  std::vector<std::string> data;
  while (true) {
    auto ev = (*stream)->Next();
    ASSERT_TRUE(ev.ok()) << ev.status().ToString();
    if (!*ev) break;
    data.push_back((*ev)->data);
  }
  ASSERT_EQ(data.size(), 3u);
  EXPECT_EQ(data[0], R"({"text_output":"He"})");
  EXPECT_EQ(data[1], R"({"text_output":"llo"})");
  EXPECT_EQ(data[2], "[DONE]");
  // The client still works for the next request (on a new connection).
  stream->reset();
  auto again = client->PostSse("/v1/completions", "{}");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->status(), 200);
}

TEST(SseStreamTest, ErrorStatusBodyIsReadable) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                "Content-Length: 19\r\n\r\n{\"error\":\"no such\"}");
    return true;
  });
  auto client = HttpClient::Create(server.endpoint());
  auto stream = client->PostSse("/v2/models/x/generate_stream", "{}");
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_EQ((*stream)->status(), 400);
  auto body = (*stream)->ReadBody();
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(*body, R"({"error":"no such"})");
}

TEST(SseStreamTest, StreamCutInsideAnEventIsAnError) {
  TestServer server([](const Req&, tcp::socket& s) {
    WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    WriteRaw(s, Chunk("data: {\"a\":1}\n\ndata: {\"a\""));
    return false;  // closes without the last chunk
  });
  auto client = HttpClient::Create(server.endpoint());
  auto stream = client->PostSse("/s", "{}");
  ASSERT_TRUE(stream.ok());
  auto first = (*stream)->Next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->has_value());
  auto second = (*stream)->Next();
  EXPECT_FALSE(second.ok());
}

TEST(SseStreamTest, CloseDisconnectsTheServerSeesIt) {
  std::promise<bool> saw_close;
  auto saw = saw_close.get_future();
  TestServer server([&saw_close](const Req&, tcp::socket& s) {
    WriteRaw(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                "Transfer-Encoding: chunked\r\n\r\n");
    WriteRaw(s, Chunk("data: {\"IDX\":0}\n\n"));
    char byte;
    beast::error_code ec;
    s.read_some(asio::buffer(&byte, 1), ec);  // blocks until the client goes away
    saw_close.set_value(ec == asio::error::eof || ec == asio::error::connection_reset);
    return false;
  });
  auto client = HttpClient::Create(server.endpoint());
  auto stream = client->PostSse("/s", "{}");
  ASSERT_TRUE(stream.ok());
  auto ev = (*stream)->Next();
  ASSERT_TRUE(ev.ok() && ev->has_value());
  (*stream)->Close();
  ASSERT_EQ(saw.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_TRUE(saw.get());
  auto after = (*stream)->Next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST(EndpointTest, ParsesUrlsAndHostPort) {
  auto a = ParseEndpoint("http://localhost:8000/");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "localhost");
  EXPECT_EQ(a->port, 8000);
  auto b = ParseEndpoint("127.0.0.1", 8001);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 8001);
  auto c = ParseEndpoint("[::1]:9000");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 9000);
  EXPECT_FALSE(ParseEndpoint("https://x:1").ok());
  EXPECT_FALSE(ParseEndpoint("x:0").ok());
  EXPECT_FALSE(ParseEndpoint("x:70000").ok());
  EXPECT_FALSE(ParseEndpoint("x:1/v1").ok());
  EXPECT_FALSE(ParseEndpoint(":80").ok());
}

}  // namespace
}  // namespace sluice::client

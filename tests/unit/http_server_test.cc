// HttpServer and Router through a real loopback socket: routing errors, limits, keep-alive,
// streaming from other threads, disconnect notification, many idle connections, Stop.

#include <atomic>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "frontend/http/http_server.h"
#include "http_test_client.h"

namespace sluice::http {
namespace {

using testing::HttpResult;
using testing::TestHttpClient;

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(HttpServerOptions options = {}) {
    options.port = 0;
    auto server = HttpServer::Create(options, std::move(router_));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    for (auto& t : threads_) t.join();
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::vector<std::thread> threads_;
};

TEST_F(HttpServerTest, RoutesCapturesAndRoutingErrorsOnOneConnection) {
  router_.Add("GET", "/v2/models/{model}/ready", [](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "text/plain", std::string(r.Param("model")) + "|" + r.query);
  });
  router_.Add("POST", "/echo", [](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "text/plain", r.body);
  });
  router_.Add("GET", "/throw", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {
    throw std::runtime_error("boom");
  });
  router_.Add("GET", "/silent", [](const HttpRequest&, std::shared_ptr<ResponseWriter>) {});
  StartServer();
  TestHttpClient c(server_->port());
  HttpResult r = c.Request("GET", "/v2/models/m1/ready?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "m1|x=1");
  r = c.Request("GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  r = c.Request("POST", "/v2/models/m1/ready", "x");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.Header("allow"), "GET");
  EXPECT_NE(r.body.find("\"error\""), std::string::npos);
  r = c.Request("GET", "/throw");
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("boom"), std::string::npos);
  r = c.Request("GET", "/silent");
  EXPECT_EQ(r.status, 500);
  r = c.Request("POST", "/echo", "hello");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(HttpServerTest, BodyOverLimitIs413AndChunkedBodyOverLimitIsRefused) {
  router_.Add("POST", "/echo", [](const HttpRequest& r, std::shared_ptr<ResponseWriter> w) {
    w->Send(200, "text/plain", std::to_string(r.body.size()));
  });
  HttpServerOptions options;
  options.max_body_bytes = 1000;
  StartServer(options);
  {
    TestHttpClient c(server_->port());
    EXPECT_EQ(c.Request("POST", "/echo", std::string(1000, 'a')).body, "1000");
    EXPECT_EQ(c.Request("POST", "/echo", std::string(1001, 'a')).status, 413);
  }
  {
    TestHttpClient c(server_->port());
    std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 5; ++i) chunked += "12c\r\n" + std::string(300, 'b') + "\r\n";  // 1500 bytes
    chunked += "0\r\n\r\n";
    c.WriteRaw(chunked);
    HttpResult r = c.ReadResponse();
    EXPECT_EQ(r.status, 413);
    EXPECT_NE(r.body.find("limit"), std::string::npos);
  }
  {
    TestHttpClient c(server_->port());
    std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    chunked += "12c\r\n" + std::string(300, 'b') + "\r\n0\r\n\r\n";
    c.WriteRaw(chunked);
    EXPECT_EQ(c.ReadResponse().body, "300");
  }
}

TEST_F(HttpServerTest, HugeHeaderIs431AndGarbageIs400) {
  router_.Add("GET", "/", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->Send(200, "", ""); });
  HttpServerOptions options;
  options.max_header_bytes = 1024;
  StartServer(options);
  {
    TestHttpClient c(server_->port());
    EXPECT_EQ(c.Request("GET", "/", "", {{"X-Big", std::string(4000, 'h')}}).status, 431);
  }
  {
    TestHttpClient c(server_->port());
    c.WriteRaw("\x01\x02 not http\r\n\r\n");
    EXPECT_EQ(c.ReadResponse().status, 400);
  }
  TestHttpClient c(server_->port());
  EXPECT_EQ(c.Request("GET", "/").status, 200);
}

TEST_F(HttpServerTest, StreamsChunksWrittenFromAnotherThread) {
  router_.Add("GET", "/stream", [this](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    threads_.emplace_back([w] {
      ASSERT_TRUE(w->StartStream(200, "text/event-stream"));
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(w->WriteChunk("data: " + std::to_string(i) + "\n\n"));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_FALSE(w->Send(200, "", "too late"));
      w->EndStream();
      EXPECT_FALSE(w->WriteChunk("after end"));
    });
  });
  router_.Add("GET", "/", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->Send(200, "", "next"); });
  StartServer();
  TestHttpClient c(server_->port());
  HttpResult r = c.Request("GET", "/stream");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(r.Header("content-type"), "text/event-stream");
  EXPECT_EQ(r.body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
  EXPECT_EQ(c.Request("GET", "/").body, "next");  // keep-alive after a stream
}

TEST_F(HttpServerTest, ClientDisconnectMidStreamFiresCallback) {
  std::promise<std::chrono::steady_clock::time_point> fired;
  std::shared_ptr<ResponseWriter> kept;
  router_.Add("GET", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->OnDisconnect([&fired] { fired.set_value(std::chrono::steady_clock::now()); });
    w->StartStream(200, "text/plain");
    w->WriteChunk("first");
    kept = w;  // the stream stays open until the client leaves
  });
  StartServer();
  TestHttpClient c(server_->port());
  c.WriteRaw("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(c.ReadUntil("first").find("first"), std::string::npos);
  const auto closed_at = std::chrono::steady_clock::now();
  c.Close();
  auto future = fired.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_LT(future.get() - closed_at, std::chrono::milliseconds(100));
  EXPECT_TRUE(kept->Disconnected());
  EXPECT_FALSE(kept->WriteChunk("gone"));
  bool late = false;
  kept->OnDisconnect([&late] { late = true; });  // registered after: runs at once
  EXPECT_TRUE(late);
}

TEST_F(HttpServerTest, ServesManyIdleConnectionsWithFewThreads) {
  router_.Add("GET", "/", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->Send(200, "", "ok"); });
  StartServer();
  std::vector<std::unique_ptr<TestHttpClient>> clients;
  for (int i = 0; i < 400; ++i) clients.push_back(std::make_unique<TestHttpClient>(server_->port()));
  for (int i = 0; i < 400; i += 7) EXPECT_EQ(clients[i]->Request("GET", "/").body, "ok") << i;
  EXPECT_EQ(clients.back()->Request("GET", "/").body, "ok");
}

TEST_F(HttpServerTest, ReadTimeoutClosesSlowSender) {
  router_.Add("GET", "/", [](const HttpRequest&, std::shared_ptr<ResponseWriter> w) { w->Send(200, "", "ok"); });
  HttpServerOptions options;
  options.read_timeout = std::chrono::milliseconds(200);
  StartServer(options);
  TestHttpClient c(server_->port());
  c.WriteRaw("GET / HTTP/1.1\r\nHost:");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.ReadAll(), "");  // closed without a reply
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(HttpServerTest, StopClosesOpenStreamsAndJoins) {
  std::atomic<bool> fired{false};
  std::shared_ptr<ResponseWriter> kept;
  router_.Add("GET", "/stream", [&](const HttpRequest&, std::shared_ptr<ResponseWriter> w) {
    w->OnDisconnect([&fired] { fired = true; });
    w->StartStream(200, "text/plain");
    w->WriteChunk("first");
    kept = w;
  });
  StartServer();
  TestHttpClient c(server_->port());
  c.WriteRaw("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
  c.ReadUntil("first");
  server_->Stop();
  EXPECT_TRUE(fired.load());
  EXPECT_FALSE(kept->WriteChunk("after stop"));
  kept.reset();
}

TEST_F(HttpServerTest, CreateFailsOnBadAddress) {
  HttpServerOptions options;
  options.address = "not an address";
  EXPECT_FALSE(HttpServer::Create(options, Router()).ok());
}

}  // namespace
}  // namespace sluice::http

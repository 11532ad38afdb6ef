// ListenerWatch: liveness that covers every listener (issue 19). A listener that stopped
// accepting (its socket still listening, as gRPC 1.51's after EMFILE) must fail its probe;
// any answer, whatever its status, proves a listener alive.
#include "server/listener_watch.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "grpc_service.grpc.pb.h"

namespace sluice::server {
namespace {

using namespace std::chrono_literals;

// A loopback listening socket that accepts only when told to. Not accepting, connections
// still complete into the backlog, exactly as for a listener whose accept loop died.
class TestListener {
 public:
  TestListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~TestListener() {
    StopAnswering();
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }

  // Accepts each connection, reads the request, answers `reply`, closes.
  void StartAnswering(std::string reply) {
    stop_ = false;
    thread_ = std::thread([this, reply] {
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 20) <= 0) continue;
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        char buf[1024];
        (void)::recv(c, buf, sizeof(buf), 0);
        (void)::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  void StopAnswering() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(ListenerWatchTest, AnyHttpStatusProvesAListenerAlive) {
  TestListener l;
  l.StartAnswering("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(ProbeHttp("127.0.0.1", l.port(), "/v2/health/live", 2s));
  EXPECT_TRUE(ProbeHttp("0.0.0.0", l.port(), "/v2/health/live", 2s));  // probed on loopback
}

TEST(ListenerWatchTest, AListenerThatStoppedAcceptingFailsItsProbe) {
  TestListener l;  // listening, never accepting
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(ProbeHttp("127.0.0.1", l.port(), "/", 300ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_FALSE(ProbeGrpc("127.0.0.1", l.port(), 300ms));
  l.StartAnswering("not http at all\r\n\r\n");
  EXPECT_FALSE(ProbeHttp("127.0.0.1", l.port(), "/", 1s));
}

TEST(ListenerWatchTest, AClosedPortFailsItsProbe) {
  uint16_t port = 0;
  { TestListener gone; port = gone.port(); }
  EXPECT_FALSE(ProbeHttp("127.0.0.1", port, "/", 500ms));
  EXPECT_FALSE(ProbeGrpc("127.0.0.1", port, 500ms));
}

TEST(ListenerWatchTest, AGrpcServerAnsweringUnimplementedIsAlive) {
  inference::GRPCInferenceService::Service unimplemented;  // every RPC: UNIMPLEMENTED
  ::grpc::ServerBuilder builder;
  builder.RegisterService(&unimplemented);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", ::grpc::InsecureServerCredentials(), &port);
  auto server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  EXPECT_TRUE(ProbeGrpc("127.0.0.1", static_cast<uint16_t>(port), 2s));
  server->Shutdown();
}

TEST(ListenerWatchTest, DeadAfterFailuresInARowAndLiveAgainWhenItAnswers) {
  TestListener http, other;
  http.StartAnswering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ListenerWatchOptions options;
  options.period = 20ms;
  options.probe_timeout = 100ms;
  options.failures_to_dead = 3;
  ListenerWatch watch({{"HTTP", WatchedListener::Kind::kHttp, "127.0.0.1", http.port(), "/"},
                       {"metrics", WatchedListener::Kind::kHttp, "127.0.0.1", other.port(), "/metrics"}},
                      options);
  EXPECT_TRUE(watch.Alive());  // nothing probed yet
  auto wait_for = [&](bool alive) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (watch.Alive() != alive && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return watch.Alive() == alive;
  };
  EXPECT_TRUE(wait_for(false)) << "the metrics listener never accepts";
  other.StartAnswering("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(wait_for(true));
}

}  // namespace
}  // namespace sluice::server

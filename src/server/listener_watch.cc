#include "server/listener_watch.h"

#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "grpc_service.grpc.pb.h"

namespace sluice::server {
namespace {

using Clock = std::chrono::steady_clock;

// A listener bound to every address is probed on loopback.
std::string ProbeHost(const std::string& address) {
  if (address.empty() || address == "0.0.0.0") return "127.0.0.1";
  if (address == "::" || address == "[::]") return "::1";
  if (address.size() > 2 && address.front() == '[' && address.back() == ']')
    return address.substr(1, address.size() - 2);
  return address;
}

int RemainingMs(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on fd until the deadline.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int n = ::poll(&p, 1, RemainingMs(deadline));
    if (n > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (n == 0 || errno != EINTR) return false;
  }
}

}  // namespace

bool ProbeHttp(const std::string& address, uint16_t port, const std::string& path,
               std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string host = ProbeHost(address);
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found) return false;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> info(found, ::freeaddrinfo);
  UniqueFd fd(::socket(info->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;  // out of descriptors: the listeners cannot accept either
  if (::connect(fd.get(), info->ai_addr, info->ai_addrlen) != 0) {
    if (errno != EINPROGRESS || !WaitFor(fd.get(), POLLOUT, deadline)) return false;
    int error = 0;
    socklen_t len = sizeof(error);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) return false;
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host +
                              "\r\nUser-Agent: sluice-listener-watch\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd.get(), POLLOUT, deadline)) return false;
    } else {
      return false;
    }
  }
  std::string reply;
  char buf[256];
  while (reply.size() < 12) {  // "HTTP/1.1 200"
    if (!WaitFor(fd.get(), POLLIN, deadline)) return false;
    const ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  return reply.rfind("HTTP/1.", 0) == 0;
}

bool ProbeGrpc(const std::string& address, uint16_t port, std::chrono::milliseconds timeout) {
  const std::string host = ProbeHost(address);
  const std::string target =
      (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  ::grpc::ChannelArguments args;
  // A channel of its own, not one from the process-wide pool: each probe is a new
  // connection that the listener has to accept.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  auto channel = ::grpc::CreateCustomChannel(target, ::grpc::InsecureChannelCredentials(), args);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  ::grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  inference::ServerLiveRequest request;
  inference::ServerLiveResponse response;
  const ::grpc::Status status = stub->ServerLive(&context, request, &response);
  return status.error_code() != ::grpc::StatusCode::UNAVAILABLE &&
         status.error_code() != ::grpc::StatusCode::DEADLINE_EXCEEDED;
}

ListenerWatch::ListenerWatch(std::vector<WatchedListener> listeners, ListenerWatchOptions options)
    : listeners_(std::move(listeners)), options_(options), thread_([this] { Run(); }) {}

ListenerWatch::~ListenerWatch() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  wake_.NotifyAll();
  thread_.join();
}

void ListenerWatch::Run() {
  std::vector<int> failures(listeners_.size(), 0);
  for (;;) {
    {
      MutexLock lock(mu_);
      if (wake_.WaitFor(mu_, options_.period, [this]() SLUICE_REQUIRES(mu_) { return stop_; })) return;
    }
    bool all_alive = true;
    for (size_t i = 0; i < listeners_.size(); ++i) {
      const WatchedListener& l = listeners_[i];
      const bool answered = l.kind == WatchedListener::Kind::kGrpc
                                ? ProbeGrpc(l.address, l.port, options_.probe_timeout)
                                : ProbeHttp(l.address, l.port, l.http_path, options_.probe_timeout);
      if (answered) {
        if (failures[i] >= options_.failures_to_dead)
          spdlog::warn("{} listener on port {} answers again: live", l.name, l.port);
        failures[i] = 0;
      } else if (++failures[i] == options_.failures_to_dead) {
        spdlog::error("{} listener on port {} did not answer {} probes in a row: the server is not live",
                      l.name, l.port, failures[i]);
      }
      all_alive = all_alive && failures[i] < options_.failures_to_dead;
    }
    alive_.store(all_alive, std::memory_order_relaxed);
  }
}

}  // namespace sluice::server

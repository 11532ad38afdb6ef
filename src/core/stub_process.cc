// StubProcess (core/stub_process.h): spawn, IPC, supervision and bounded stop of one
// sluice-stub child.
//
// Threads: one IO thread per stub reads every message, sends heartbeats, watches the
// pidfd, reaps the child and runs the callbacks. Public methods may run on any thread;
// state shared with the IO thread is guarded by Impl::mu.
//
// Teardown order (the lifecycle contract depends on it): child reaped -> every request
// still in flight gets its final Unavailable event -> on_exit -> the link (socket and
// shared memory) is released once the last in-progress send returns -> Stop returns.

#include "core/stub_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/thread_annotations.h"
#include "core/stub_spawner.h"
#include "ipc/connection.h"

namespace sluice::core {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint64_t kShmBytesPerDirection = 32u << 20;
constexpr int kSocketBufferBytes = 1 << 20;
constexpr milliseconds kSendTimeout{5000};
// A stub whose control socket closed but which is still alive after this is killed.
constexpr milliseconds kClosedLinkGrace{1000};

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

std::string Seconds(milliseconds ms) {
  if (ms.count() % 1000 == 0) return std::to_string(ms.count() / 1000) + "s";
  return std::to_string(ms.count()) + "ms";
}

// What the IO thread alone keeps from one round of IoLoop to the next.
struct IoState {
  std::shared_ptr<ipc::Connection> conn;
  bool link_open = true;
  Clock::time_point link_closed_at;  // when link_open turned false
  uint64_t sequence = 0;             // of the last heartbeat sent
  Clock::time_point next_heartbeat;

  void CloseLink() {
    link_open = false;
    link_closed_at = Clock::now();
  }
};

// What woke the IO thread.
struct IoEvents {
  bool link = false;   // the control connection has something (a message, or its close)
  bool child = false;  // the pidfd says the child exited
};

}  // namespace

struct StubProcess::Impl {
  // Constant after Spawn.
  StubLaunchSpec spec;
  StubCallbacks callbacks;
  std::string label;  // "model 'x' version 1 instance 0"
  pid_t pid = -1;
  int pidfd = -1;     // -1: kernel without pidfd_open; the IO thread polls waitpid
  int wake_fd = -1;   // eventfd: wakes the IO thread
  int link_fd = -1;   // the socket inside `link`, for poll
  std::thread io;
  std::thread::id io_id;

  Mutex stop_mu;  // serializes Stop callers

  mutable Mutex mu;
  CondVar cv;
  std::shared_ptr<ipc::Connection> link SLUICE_GUARDED_BY(mu);  // reset after the child is reaped
  bool init_done SLUICE_GUARDED_BY(mu) = false;
  Status init_status SLUICE_GUARDED_BY(mu);
  bool stopping SLUICE_GUARDED_BY(mu) = false;
  bool reaped SLUICE_GUARDED_BY(mu) = false;
  bool exited SLUICE_GUARDED_BY(mu) = false;  // reaped and every callback made
  // Set when we killed it for a reason of our own.
  std::string kill_reason SLUICE_GUARDED_BY(mu);
  std::string stop_note SLUICE_GUARDED_BY(mu);  // escalation steps taken by Stop
  std::string exit_reason SLUICE_GUARDED_BY(mu);
  std::set<uint64_t> in_flight SLUICE_GUARDED_BY(mu);
  std::vector<MetricFamily> metrics SLUICE_GUARDED_BY(mu);
  bool metrics_drop_logged SLUICE_GUARDED_BY(mu) = false;
  Clock::time_point last_ack SLUICE_GUARDED_BY(mu);
  // Whether the stub has sent anything yet. Heartbeats are checked only from its first
  // message on: before it, the stub may still be exec'ing and loading its libraries (the
  // CUDA ones are hundreds of MB, seconds from a cold disk), and WaitReady's timeout bounds
  // that start instead. (Checked from the spawn, a cold machine's first stub was killed for
  // "stopped answering heartbeats" before its main() ran.)
  bool answered SLUICE_GUARDED_BY(mu) = false;

  ~Impl() {
    if (pidfd >= 0) close(pidfd);
    if (wake_fd >= 0) close(wake_fd);
  }

  void Wake() {
    uint64_t one = 1;
    (void)!write(wake_fd, &one, sizeof one);
  }

  // Sends `sig` unless the child was already reaped (its pid may then be reused).
  void Signal(int sig) SLUICE_EXCLUDES(mu) {
    MutexLock lock(mu);
    if (!reaped) ::kill(pid, sig);
  }

  // Kills the child for a reason of ours; the first reason given is the exit reason.
  void Kill(const std::string& reason) SLUICE_EXCLUDES(mu) {
    {
      MutexLock lock(mu);
      if (reaped) return;
      if (kill_reason.empty()) {
        kill_reason = reason;
        spdlog::error("{}: killing the stub (pid {}): {}", label, pid, reason);
      }
      ::kill(pid, SIGKILL);
    }
    Wake();
  }

  void HandleMessage(ipc::Message m) SLUICE_EXCLUDES(mu) {
    switch (m.type()) {
      case ipc::MessageType::kInitResult: {
        MutexLock lock(mu);
        if (init_done) {
          violation = "sent a second InitResult";
          return;
        }
        init_done = true;
        if (!answered) last_ack = Clock::now();
        answered = true;
        init_status = std::get<ipc::InitResultMessage>(m.body).status;
        cv.NotifyAll();
        return;
      }
      case ipc::MessageType::kResponse: {
        auto& event = std::get<ipc::ResponseMessage>(m.body).event;
        {
          MutexLock lock(mu);
          if (!in_flight.contains(m.request_id)) {
            violation = "sent a response for request " + std::to_string(m.request_id) +
                            ", which is not in flight";
            return;
          }
          if (event.final) in_flight.erase(m.request_id);
        }
        if (callbacks.on_response) callbacks.on_response(m.request_id, std::move(event));
        return;
      }
      case ipc::MessageType::kHeartbeatAck: {
        auto& ack = std::get<ipc::HeartbeatAckMessage>(m.body);
        MutexLock lock(mu);
        last_ack = Clock::now();
        answered = true;
        metrics = std::move(ack.metrics);
        if (!ack.metrics_dropped.empty() && !metrics_drop_logged) {
          metrics_drop_logged = true;  // once per stub: it would repeat with every heartbeat
          spdlog::warn("{}: metrics left out: {}", label, ack.metrics_dropped);
        }
        return;
      }
      case ipc::MessageType::kRequestStarted: {
        {
          MutexLock lock(mu);
          // A late report (the request ended meanwhile) is harmless: ignored.
          if (!in_flight.contains(m.request_id)) return;
        }
        if (callbacks.on_started) callbacks.on_started(m.request_id);
        return;
      }
      case ipc::MessageType::kInit:
      case ipc::MessageType::kRequest:
      case ipc::MessageType::kCancel:
      case ipc::MessageType::kHeartbeat:
      case ipc::MessageType::kShutdown:
      case ipc::MessageType::kShmRelease:
        // Connection::Receive rejects these from a stub (ShmRelease is consumed there).
        violation = "sent a " + std::string(ipc::MessageTypeName(m.type())) + " message";
        return;
    }
  }
  std::string violation;  // IO thread only: a protocol violation found by HandleMessage

  // The IO thread's body, until the child is reaped; a round is the steps below, in order.
  void IoLoop() SLUICE_EXCLUDES(mu);
  // Waits for a message, the child's exit, a wake-up or the next heartbeat.
  IoEvents WaitForEvents(const IoState& io);
  // Handles every message waiting; a protocol violation or a broken link closes the link.
  void Drain(IoState& io) SLUICE_EXCLUDES(mu);
  // Reaps the child if it has exited (`gone`: the pidfd says so; else waitpid polls), then
  // delivers what it sent before dying and runs Reap. True when it was reaped.
  bool TryReap(IoState& io, bool gone) SLUICE_EXCLUDES(mu);
  // Kills a stub that stopped answering, else sends the next heartbeat.
  void Heartbeat(IoState& io, Clock::time_point now) SLUICE_EXCLUDES(mu);
  void Reap(int status) SLUICE_EXCLUDES(mu);
};

void StubProcess::Impl::IoLoop() {
  IoState io;
  {
    MutexLock lock(mu);
    io.conn = link;
  }
  io.next_heartbeat = Clock::now() + spec.heartbeat_interval;
  for (;;) {
    const IoEvents events = WaitForEvents(io);
    // Messages before looking at an exit, so that what a stub sent just before it died is
    // delivered before the server's own final events.
    if (events.link) Drain(io);
    if ((events.child || pidfd < 0) && TryReap(io, events.child)) return;
    if (!io.link_open && Clock::now() - io.link_closed_at > kClosedLinkGrace)
      Kill("closed its control connection");
    // Heartbeats (not while Stop has its own timeouts running).
    const auto now = Clock::now();
    if (now >= io.next_heartbeat) Heartbeat(io, now);
  }
}

IoEvents StubProcess::Impl::WaitForEvents(const IoState& io) {
  pollfd fds[3];
  int n = 0;
  fds[n++] = {wake_fd, POLLIN, 0};
  const int pid_slot = pidfd >= 0 ? n : -1;
  if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
  const int link_slot = io.link_open ? n : -1;
  if (io.link_open) fds[n++] = {link_fd, POLLIN, 0};
  auto wait = std::chrono::duration_cast<milliseconds>(io.next_heartbeat - Clock::now()).count();
  if (pidfd < 0) wait = std::min<int64_t>(wait, 50);
  if (!io.link_open) wait = std::min<int64_t>(wait, 100);
  (void)::poll(fds, n, static_cast<int>(std::max<int64_t>(wait, 0)));
  if (fds[0].revents & POLLIN) {
    uint64_t v;
    (void)!read(wake_fd, &v, sizeof v);
  }
  IoEvents events;
  events.link = link_slot >= 0 && fds[link_slot].revents != 0;
  events.child = pid_slot >= 0 && (fds[pid_slot].revents & POLLIN);
  return events;
}

void StubProcess::Impl::Drain(IoState& io) {
  for (;;) {
    auto m = io.conn->Receive(milliseconds(0));
    if (m.ok()) {
      HandleMessage(std::move(m).value());
      if (!violation.empty()) {
        Kill("sent an invalid message: " + violation);
        violation.clear();
        io.CloseLink();
        return;
      }
      continue;
    }
    if (m.status().code() == StatusCode::kDeadlineExceeded) return;
    io.CloseLink();
    if (m.status().code() != StatusCode::kUnavailable)
      Kill("sent an invalid message: " + m.status().message());
    return;
  }
}

bool StubProcess::Impl::TryReap(IoState& io, bool gone) {
  MutexLock lock(mu);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, gone ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid) return false;
  reaped = true;
  lock.Unlock();
  if (io.link_open) Drain(io);  // whatever it wrote before dying
  Reap(status);
  return true;
}

void StubProcess::Impl::Heartbeat(IoState& io, Clock::time_point now) {
  io.next_heartbeat = now + spec.heartbeat_interval;
  bool check;
  Clock::time_point last;
  {
    MutexLock lock(mu);
    check = !stopping && kill_reason.empty() && answered;
    last = last_ack;
  }
  if (check && now - last > spec.heartbeat_timeout) {
    Kill("stopped answering heartbeats for " + Seconds(spec.heartbeat_timeout));
  } else if (io.link_open) {
    ipc::Message hb;
    hb.body = ipc::HeartbeatMessage{++io.sequence};
    // Posted: the IO thread never waits on a write (ipc/channel.h says why).
    (void)io.conn->Post(hb);
  }
}

void StubProcess::Impl::Reap(int status) {
  std::set<uint64_t> orphans;
  std::string reason;
  bool expected;
  {
    MutexLock lock(mu);
    reason = kill_reason.empty() ? DescribeWaitStatus(status) : kill_reason;
    if (!stop_note.empty() && kill_reason.empty()) reason += " (" + stop_note + ")";
    exit_reason = reason;
    expected = stopping;
    orphans.swap(in_flight);
    if (!init_done) {
      init_done = true;
      init_status = Unavailable(label + ": stub exited during initialization: " + reason);
    }
  }
  if (expected) {
    spdlog::info("{}: stub (pid {}) {}", label, pid, reason);
  } else {
    spdlog::error("{}: stub (pid {}) {}", label, pid, reason);
  }
  // Release on final is the server's job: every open request gets its final event here.
  for (uint64_t id : orphans) {
    if (!callbacks.on_response) break;
    ResponseEvent ev;
    ev.status = Unavailable(label + ": stub exited: " + reason);
    ev.final = true;
    callbacks.on_response(id, std::move(ev));
  }
  if (callbacks.on_exit) callbacks.on_exit(reason, expected);
  std::shared_ptr<ipc::Connection> drop;
  {
    MutexLock lock(mu);
    drop.swap(link);
    exited = true;
  }
  cv.NotifyAll();
}

Result<std::unique_ptr<StubProcess>> StubProcess::Spawn(const StubLaunchSpec& spec,
                                                       StubCallbacks callbacks) {
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  impl->callbacks = std::move(callbacks);
  impl->label = "model '" + spec.instance.model_name + "' version " +
                std::to_string(spec.instance.model_version) + " instance " +
                std::to_string(spec.instance.instance_index);
  if (spec.heartbeat_interval.count() <= 0 || spec.heartbeat_timeout.count() <= 0)
    return InvalidArgument(impl->label + ": heartbeat interval and timeout must be positive");

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Unavailable(impl->label + ": cannot create the control socket: " + std::strerror(errno));
  for (int fd : sv) {
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof kSocketBufferBytes);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof kSocketBufferBytes);
  }
  auto channel = std::make_unique<ipc::Channel>(sv[0]);  // owns sv[0] from here
  auto region = ipc::ShmRegion::Create(kShmBytesPerDirection);
  if (!region.ok()) {
    close(sv[1]);
    return region.status().WithPrefix(impl->label);
  }

  ChildLaunch launch;
  launch.path = spec.stub_path;
  launch.args = {"--ipc-fd", "3", "--shm-fd", "4", "--parent-pid", std::to_string(getpid())};
  launch.fds = {{sv[1], 3}, {(*region)->fd(), 4}};
  auto pid = SpawnChild(launch);
  close(sv[1]);
  if (!pid.ok()) return pid.status().WithPrefix(impl->label);
  impl->pid = *pid;
  impl->pidfd = static_cast<int>(syscall(SYS_pidfd_open, impl->pid, 0));
  if (impl->pidfd < 0)
    spdlog::warn("{}: pidfd_open unavailable ({}); exit detection polls", impl->label,
                 std::strerror(errno));
  impl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  impl->link_fd = channel->fd();
  auto link = std::make_shared<ipc::Connection>(ipc::Side::kServer, std::move(channel),
                                                std::move(region).value());
  {
    MutexLock lock(impl->mu);  // no IO thread yet, but the fields are mu's
    impl->link = link;
    impl->last_ack = Clock::now();
  }

  ipc::Message m;
  m.body = ipc::InitMessage{spec.instance};
  Status sent = link->Send(m, kSendTimeout);

  std::unique_ptr<StubProcess> stub(new StubProcess());
  Impl* raw = impl.get();
  stub->impl_ = std::move(impl);
  raw->io = std::thread([raw] { raw->IoLoop(); });
  raw->io_id = raw->io.get_id();
  if (!sent.ok()) {
    raw->Kill("could not be sent its launch spec: " + sent.message());
    (void)stub->Stop(milliseconds(0), milliseconds(1000));
    return Unavailable(raw->label + ": the stub did not take its launch spec: " + sent.message());
  }
  spdlog::info("{}: stub started (pid {})", raw->label, raw->pid);
  return stub;
}

StubProcess::~StubProcess() {
  if (!impl_) return;
  if (std::this_thread::get_id() != impl_->io_id) {
    (void)Stop(milliseconds(0), milliseconds(1000));
  }
  if (impl_->io.joinable()) {
    if (std::this_thread::get_id() == impl_->io_id) {
      // Destroyed from its own callback: the IO thread is about to return; it cannot join
      // itself. Contract violation documented in the header; keep the process alive.
      impl_->io.detach();
      (void)impl_.release();
      return;
    }
    impl_->io.join();
  }
}

Status StubProcess::WaitReady(std::chrono::milliseconds timeout) {
  Impl& d = *impl_;
  {
    MutexLock lock(d.mu);
    if (d.cv.WaitFor(d.mu, timeout, [&]() SLUICE_REQUIRES(d.mu) { return d.init_done; })) {
      if (d.init_status.ok()) return Status::Ok();
      return d.init_status;
    }
  }
  d.Kill("did not finish initializing within " + Seconds(timeout));
  {
    MutexLock lock(d.mu);
    d.cv.WaitFor(d.mu, std::chrono::seconds(5), [&]() SLUICE_REQUIRES(d.mu) { return d.exited; });
  }
  return Unavailable(d.label + ": initialization did not finish within " + Seconds(timeout));
}

Status StubProcess::SendRequest(uint64_t request_id, const InferRequest& request) {
  Impl& d = *impl_;
  std::shared_ptr<ipc::Connection> conn;
  {
    MutexLock lock(d.mu);
    if (d.reaped || !d.link) return Unavailable(d.label + ": stub exited: " + d.exit_reason);
    if (d.stopping) return Unavailable(d.label + " is stopping");
    if (!d.kill_reason.empty()) return Unavailable(d.label + ": stub " + d.kill_reason);
    if (!d.in_flight.insert(request_id).second)
      return InvalidArgument(d.label + ": request " + std::to_string(request_id) +
                             " is already in flight");
    conn = d.link;
  }
  ipc::Message m;
  m.request_id = request_id;
  m.body = ipc::RequestMessage{request};
  Status s = conn->Send(m, kSendTimeout);
  if (s.ok()) return s;
  MutexLock lock(d.mu);
  // If the exit path already took the request, it delivered the final event: report OK.
  if (d.in_flight.erase(request_id) == 0) return Status::Ok();
  // A link busy with large tensors refuses or times out cleanly (nothing of the request
  // was sent): the client may retry; the stub is fine.
  if (s.code() == StatusCode::kResourceExhausted || s.code() == StatusCode::kDeadlineExceeded)
    return ResourceExhausted(d.label + ": the link to the stub is busy, request not sent: " +
                             s.message());
  // The encoder refused what the client sent (an id or a parameter past the IPC limits): the
  // client's error (400), not the stub's (503, which clients and balancers retry).
  if (s.code() == StatusCode::kInvalidArgument) return InvalidArgument(s.message());
  return Unavailable(d.label + ": cannot send the request to the stub: " + s.message());
}

Status StubProcess::SendCancel(uint64_t request_id) {
  Impl& d = *impl_;
  std::shared_ptr<ipc::Connection> conn;
  {
    MutexLock lock(d.mu);
    if (!d.in_flight.contains(request_id)) return Status::Ok();
    if (!d.link) return Unavailable(d.label + ": stub exited");
    conn = d.link;
  }
  ipc::Message m;
  m.request_id = request_id;
  m.body = ipc::CancelMessage{};
  return conn->Send(m, kSendTimeout);
}

std::string StubProcess::Stop(std::chrono::milliseconds finalize_timeout,
                              std::chrono::milliseconds kill_timeout) {
  Impl& d = *impl_;
  MutexLock stop_lock(d.stop_mu);
  std::shared_ptr<ipc::Connection> conn;
  {
    MutexLock lock(d.mu);
    if (!d.reaped && !d.stopping) {
      d.stopping = true;
      conn = d.link;
    }
  }
  auto wait_exit = [&d](milliseconds t) {
    MutexLock lock(d.mu);
    return d.cv.WaitFor(d.mu, t, [&d]() SLUICE_REQUIRES(d.mu) { return d.exited; });
  };
  if (std::this_thread::get_id() == d.io_id) {
    // From a callback: the IO thread cannot wait for itself. Escalate without waiting.
    MutexLock lock(d.mu);
    if (!d.reaped) ::kill(d.pid, SIGKILL);
    return d.exit_reason;
  }
  if (conn) {
    ipc::Message m;
    m.body = ipc::ShutdownMessage{};
    (void)conn->Send(m, std::min(finalize_timeout, milliseconds(1000)));
    conn.reset();
  }
  if (!wait_exit(finalize_timeout)) {
    {
      MutexLock lock(d.mu);
      d.stop_note = "did not exit within " + Seconds(finalize_timeout) + " of shutdown";
    }
    d.Signal(SIGTERM);
    if (!wait_exit(kill_timeout)) {
      {
        MutexLock lock(d.mu);
        d.stop_note += ", nor within " + Seconds(kill_timeout) + " of SIGTERM";
      }
      d.Signal(SIGKILL);
      while (!wait_exit(milliseconds(5000)))
        spdlog::error("{}: stub (pid {}) still not reaped after SIGKILL", d.label, d.pid);
    }
  }
  if (d.io.joinable()) d.io.join();
  MutexLock lock(d.mu);
  return d.exit_reason;
}

pid_t StubProcess::pid() const { return impl_->pid; }

bool StubProcess::running() const {
  MutexLock lock(impl_->mu);
  return !impl_->reaped;
}

std::vector<MetricFamily> StubProcess::Metrics() const {
  MutexLock lock(impl_->mu);
  return impl_->metrics;
}

Clock::time_point StubProcess::last_heartbeat_ack() const {
  MutexLock lock(impl_->mu);
  return impl_->last_ack;
}

}  // namespace sluice::core

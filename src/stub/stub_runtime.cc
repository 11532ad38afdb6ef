#include "stub/stub_runtime.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/log_settings.h"
#include "stub/backend_registry.h"
#include "stub/ipc_response_sender.h"

namespace sluice::stub {
namespace {

constexpr auto kInitWait = std::chrono::seconds(60);
constexpr auto kReadSlice = std::chrono::milliseconds(1000);
constexpr auto kSendTimeout = std::chrono::milliseconds(10000);

}  // namespace

StubRuntime::StubRuntime(int ipc_fd, int shm_fd) {
  std::unique_ptr<ipc::ShmRegion> region;
  if (shm_fd >= 0) {
    auto r = ipc::ShmRegion::Attach(shm_fd);
    if (r.ok()) {
      region = std::move(r).value();
    } else {
      spdlog::warn("shared memory unavailable, tensors travel inline: {}", r.status().message());
    }
  }
  link_ = std::make_unique<ipc::Connection>(
      ipc::Side::kStub, std::make_unique<ipc::Channel>(ipc_fd), std::move(region));
}

void StubRuntime::Exit(int code) {
  spdlog::default_logger()->flush();
  std::fflush(nullptr);
  _exit(code);
}

void StubRuntime::Run() {
  auto first = link_->Receive(kInitWait);
  if (!first.ok()) {
    spdlog::error("no Init message from the server: {}", first.status().ToString());
    Exit(2);
  }
  auto* init = std::get_if<ipc::InitMessage>(&first->body);
  if (init == nullptr) {
    spdlog::error("expected Init, got {}", ipc::MessageTypeName(first->type()));
    Exit(2);
  }
  // The server's format (common/log_settings.h): stubs write to the server's stderr.
  const InstanceSpec& instance = init->instance;
  SetLogPattern("default", "[stub " + instance.model_name + "/" +
                               std::to_string(instance.model_version) + "/" +
                               std::to_string(instance.instance_index) + "] ");
  if (instance.verbose_log) spdlog::set_level(spdlog::level::debug);

  // What the IPC thread reads is settled before it starts.
  Status status = Prepare(instance);

  // Heartbeats are answered while the backend initializes.
  reader_ = std::thread([this] { ReadLoop(); });

  if (status.ok()) status = Initialize(instance);
  if (status.ok()) initialized_.store(true);
  ipc::Message result;
  result.body = ipc::InitResultMessage{status};
  if (Status s = link_->Send(result, kSendTimeout); !s.ok()) {
    spdlog::error("cannot report initialization: {}", s.ToString());
    Exit(1);
  }
  if (!status.ok()) spdlog::error("initialization failed: {}", status.ToString());

  {
    MutexLock lock(mu_);
    cv_.Wait(mu_, [this]() SLUICE_REQUIRES(mu_) { return shutdown_requested_; });
  }
  // Teardown order: the IPC thread no longer calls Execute/Cancel (shutting_down_ was set
  // before shutdown_requested_), so Finalize runs alone; then the test GPU memory goes;
  // then the process exits, which closes the link and unmaps the shared memory.
  if (backend_ && initialized_.load()) {
    spdlog::info("finalizing");
    backend_->Finalize();
  }
  if (behavior_.hang_in_finalize) {
    spdlog::warn("hang_in_finalize: finalize will never return");
    for (;;) pause();
  }
  gpu_hold_.reset();
  spdlog::info("finalized, exiting");
  Exit(0);
}

Status StubRuntime::Prepare(const InstanceSpec& instance) {
  backend_name_ = instance.config.backend();
  ASSIGN_OR_RETURN(behavior_, TestBehavior::FromConfig(instance.config));
  if (behavior_.ignore_shutdown) {
    signal(SIGTERM, SIG_IGN);
    spdlog::warn("ignore_shutdown: Shutdown and SIGTERM will be ignored");
  }
  return Status::Ok();
}

Status StubRuntime::Initialize(const InstanceSpec& instance) {
  ASSIGN_OR_RETURN(backend_, CreateBackend(backend_name_));
  RETURN_IF_ERROR(backend_->Initialize(instance));
  if (behavior_.gpu_hold_mib > 0) {
    if (instance.kind == InstanceKind::kGpu) {
      auto hold =
          GpuHold::Allocate(instance.gpu_id < 0 ? 0 : instance.gpu_id, behavior_.gpu_hold_mib);
      if (hold.ok()) {
        gpu_hold_ = std::move(hold).value();
        spdlog::info("gpu_hold_mib: holding {} MiB on GPU {}", behavior_.gpu_hold_mib,
                     instance.gpu_id);
      } else {
        spdlog::warn("gpu_hold_mib: no GPU memory held: {}", hold.status().message());
      }
    } else {
      spdlog::info("gpu_hold_mib: instance is not KIND_GPU, nothing held");
    }
  }
  return Status::Ok();
}

void StubRuntime::SendStarted(uint64_t request_id) {
  ipc::Message m;
  m.request_id = request_id;
  m.body = ipc::RequestStartedMessage{};
  // Posted, never waited for: the stub's IPC thread calls this before Execute.
  if (Status s = link_->Post(m); !s.ok())
    spdlog::debug("cannot report request {} started: {}", request_id, s.ToString());
}

Status StubRuntime::SendResponse(uint64_t request_id, ResponseEvent event) {
  const bool counts = event.has_response;
  const bool final = event.final;
  if (final) {
    MutexLock lock(mu_);
    senders_.erase(request_id);
  }
  ipc::Message m;
  m.request_id = request_id;
  m.body = ipc::ResponseMessage{std::move(event)};
  Status s = link_->Send(m, kSendTimeout);
  if (final && (s.code() == StatusCode::kResourceExhausted ||
                s.code() == StatusCode::kDeadlineExceeded)) {
    // The final was withdrawn unsent (the link stayed busy): the request must still end,
    // so send a small final error in its place.
    ipc::Message error;
    error.request_id = request_id;
    ResponseEvent ev;
    ev.status = ResourceExhausted("the response could not be sent to the server: " + s.message());
    ev.final = true;
    error.body = ipc::ResponseMessage{std::move(ev)};
    (void)link_->Send(error, kSendTimeout);
  }
  if (s.ok() && counts && behavior_.crash_after_responses > 0 &&
      responses_sent_.fetch_add(1) + 1 == behavior_.crash_after_responses) {
    spdlog::warn("crash_after_responses: aborting after response {}",
                 behavior_.crash_after_responses);
    spdlog::default_logger()->flush();
    std::abort();
  }
  return s;
}

void StubRuntime::ReadLoop() {
  for (;;) {
    auto m = link_->Receive(kReadSlice);
    if (!m.ok()) {
      switch (m.status().code()) {
        case StatusCode::kDeadlineExceeded:
          continue;
        case StatusCode::kUnavailable:
          // The server is gone: nobody can use this instance any more.
          spdlog::warn("link to the server closed: exiting");
          Exit(1);
        default:
          spdlog::error("invalid message from the server: {}", m.status().ToString());
          Exit(2);
      }
    }
    switch (m->type()) {
      case ipc::MessageType::kRequest:
        HandleRequest(m->request_id, std::move(std::get<ipc::RequestMessage>(m->body).request));
        break;
      case ipc::MessageType::kCancel:
        HandleCancel(m->request_id);
        break;
      case ipc::MessageType::kHeartbeat:
        HandleHeartbeat(std::get<ipc::HeartbeatMessage>(m->body).sequence);
        break;
      case ipc::MessageType::kShutdown:
        if (behavior_.ignore_shutdown) {
          spdlog::warn("ignore_shutdown: ignoring Shutdown");
          break;
        }
        spdlog::info("shutdown requested");
        shutting_down_.store(true);
        {
          MutexLock lock(mu_);
          shutdown_requested_ = true;
        }
        cv_.NotifyAll();
        break;
      case ipc::MessageType::kInit:
        spdlog::error("second Init message ignored");
        break;
      case ipc::MessageType::kInitResult:
      case ipc::MessageType::kResponse:
      case ipc::MessageType::kHeartbeatAck:
      case ipc::MessageType::kShmRelease:
      case ipc::MessageType::kRequestStarted:
        // Connection::Receive rejects these from the server; unreachable.
        break;
    }
  }
}

void StubRuntime::HandleRequest(uint64_t id, InferRequest request) {
  auto sender = std::make_shared<IpcResponseSender>(*this, id);
  if (!initialized_.load() || shutting_down_.load()) {
    (void)sender->SendError(Unavailable(shutting_down_.load() ? "model instance is shutting down"
                                                              : "model instance is not ready"));
    return;
  }
  {
    MutexLock lock(mu_);
    senders_[id] = sender;
  }
  if (!backend_->ReportsRequestStart()) sender->ReportStarted();
  backends::BackendRequest br;
  br.id = id;
  br.request = std::move(request);
  br.sender = std::move(sender);
  backend_->Execute(std::move(br));
}

void StubRuntime::HandleCancel(uint64_t id) {
  std::shared_ptr<IpcResponseSender> sender;
  {
    MutexLock lock(mu_);
    auto it = senders_.find(id);
    if (it != senders_.end()) sender = it->second.lock();
  }
  if (!sender) return;  // already finished
  sender->MarkCancelled();
  if (initialized_.load() && !shutting_down_.load()) backend_->Cancel(id);
}

void StubRuntime::HandleHeartbeat(uint64_t sequence) {
  ipc::HeartbeatAckMessage ack;
  ack.sequence = sequence;
  if (initialized_.load() && !shutting_down_.load()) ack.metrics = backend_->Metrics();
  ipc::Message m;
  m.body = std::move(ack);
  // Posted, never waited for: this is the IPC thread, which must keep reading.
  if (Status s = link_->Post(m); !s.ok())
    spdlog::warn("cannot answer a heartbeat: {}", s.ToString());
}

}  // namespace sluice::stub

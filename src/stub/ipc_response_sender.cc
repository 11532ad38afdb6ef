#include "stub/ipc_response_sender.h"

#include "stub/stub_runtime.h"

namespace sluice::stub {

IpcResponseSender::~IpcResponseSender() {
  bool finished;
  {
    MutexLock lock(mu_);
    finished = finished_;
  }
  if (!finished)
    (void)SendError(Internal("backend '" + runtime_.backend_name() +
                             "' dropped the request without a final response"));
}

Status IpcResponseSender::Emit(ResponseEvent event) {
  MutexLock lock(mu_);
  if (finished_) return InvalidArgument("request already received its final response");
  if (event.final) finished_ = true;
  return runtime_.SendResponse(request_id_, std::move(event));
}

void IpcResponseSender::ReportStarted() {
  if (started_.exchange(true)) return;
  MutexLock lock(mu_);  // never after the final event
  if (!finished_) runtime_.SendStarted(request_id_);
}

Status IpcResponseSender::Send(InferResponse response, bool final) {
  ResponseEvent ev;
  ev.response = std::move(response);
  ev.has_response = true;
  ev.final = final;
  return Emit(std::move(ev));
}

Status IpcResponseSender::SendFinal() {
  ResponseEvent ev;
  ev.final = true;
  return Emit(std::move(ev));
}

Status IpcResponseSender::SendError(Status error) {
  if (error.ok()) error = Internal("backend ended the request with an OK error");
  ResponseEvent ev;
  ev.status = std::move(error);
  ev.final = true;
  return Emit(std::move(ev));
}

}  // namespace sluice::stub

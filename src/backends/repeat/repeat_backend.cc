#include "backends/repeat/repeat_backend.h"

#include <algorithm>
#include <cstring>

namespace sluice::backends {
namespace {

const Tensor* FindInput(const InferRequest& r, std::string_view name) {
  for (const Tensor& t : r.inputs)
    if (t.name == name) return &t;
  return nullptr;
}

template <typename T>
Result<std::vector<T>> ReadValues(const Tensor& t, DataType type) {
  if (t.datatype != type)
    return InvalidArgument("input '" + t.name + "' must be " + std::string(DataTypeName(type)) +
                           ", got " + std::string(DataTypeName(t.datatype)));
  RETURN_IF_ERROR(ValidateTensorData(t));
  std::vector<T> out(t.data.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), out.size() * sizeof(T));
  return out;
}

template <typename T>
Tensor Scalar(std::string name, DataType type, T v) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = type;
  t.shape = {1};
  t.data.assign(reinterpret_cast<const char*>(&v), sizeof v);
  return t;
}

}  // namespace

RepeatBackend::~RepeatBackend() { Finalize(); }

Status RepeatBackend::Initialize(const InstanceSpec& context) {
  context_ = context;
  worker_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void RepeatBackend::Execute(BackendRequest request) {
  const InferRequest& r = request.request;
  Stream s;
  s.sender = std::move(request.sender);
  s.client_id = r.id;
  const Tensor* in = FindInput(r, "IN");
  if (in == nullptr) {
    (void)s.sender->SendError(InvalidArgument("input 'IN' is required"));
    return;
  }
  auto values = ReadValues<int32_t>(*in, DataType::kInt32);
  if (!values.ok()) {
    (void)s.sender->SendError(values.status());
    return;
  }
  s.values = std::move(values).value();
  s.delays_ms.assign(s.values.size(), 0);
  if (const Tensor* delay = FindInput(r, "DELAY")) {
    auto d = ReadValues<uint32_t>(*delay, DataType::kUint32);
    if (!d.ok()) {
      (void)s.sender->SendError(d.status());
      return;
    }
    if (d->size() != s.values.size()) {
      (void)s.sender->SendError(InvalidArgument(
          "input 'DELAY' has " + std::to_string(d->size()) + " elements, 'IN' has " +
          std::to_string(s.values.size())));
      return;
    }
    s.delays_ms = std::move(d).value();
  }
  uint32_t wait_ms = 0;
  if (const Tensor* wait = FindInput(r, "WAIT")) {
    auto w = ReadValues<uint32_t>(*wait, DataType::kUint32);
    if (!w.ok() || w->size() != 1) {
      (void)s.sender->SendError(w.ok() ? InvalidArgument("input 'WAIT' must have one element")
                                       : w.status());
      return;
    }
    wait_ms = (*w)[0];
  }
  const auto now = Clock::now();
  s.release_at = now + std::chrono::milliseconds(wait_ms);
  s.due = s.values.empty() ? s.release_at : now + std::chrono::milliseconds(s.delays_ms[0]);
  MutexLock lock(mu_);
  if (stop_) {
    (void)s.sender->SendError(Unavailable("model instance is shutting down"));
    return;
  }
  streams_[request.id] = std::move(s);
  cv_.NotifyAll();
}

void RepeatBackend::Cancel(uint64_t id) {
  std::shared_ptr<ResponseSender> sender;
  {
    MutexLock lock(mu_);
    auto it = streams_.find(id);
    if (it == streams_.end()) return;
    sender = std::move(it->second.sender);
    streams_.erase(it);
    cv_.NotifyAll();
  }
  (void)sender->SendError(Cancelled("request was cancelled"));
}

void RepeatBackend::Run() {
  // One unit of work, taken under the lock and sent outside it (a send may wait on IPC).
  struct Work {
    std::shared_ptr<ResponseSender> sender;
    bool cancelled = false;
    bool final = false;
    InferResponse response;
  };
  MutexLock lock(mu_);
  while (!stop_) {
    auto earliest = Clock::time_point::max();
    for (const auto& [id, s] : streams_) earliest = std::min(earliest, s.due);
    if (earliest == Clock::time_point::max()) {
      cv_.Wait(mu_);
      continue;
    }
    if (earliest > Clock::now()) {
      cv_.WaitUntil(mu_, earliest);
      continue;
    }
    std::vector<Work> work;
    const auto now = Clock::now();
    for (auto it = streams_.begin(); it != streams_.end();) {
      Stream& s = it->second;
      if (s.due > now) {
        ++it;
        continue;
      }
      Work w;
      w.sender = s.sender;
      if (s.sender->IsCancelled()) {
        w.cancelled = true;
      } else if (s.next < s.values.size()) {
        w.response.model_name = context_.model_name;
        w.response.model_version = context_.model_version;
        w.response.id = s.client_id;
        w.response.outputs.push_back(Scalar("OUT", DataType::kInt32, s.values[s.next]));
        w.response.outputs.push_back(
            Scalar("IDX", DataType::kUint32, static_cast<uint32_t>(s.next)));
        ++s.next;
        ++responses_sent_;
        s.due = s.next < s.values.size() ? now + std::chrono::milliseconds(s.delays_ms[s.next])
                                         : std::max(now, s.release_at);
      } else {
        w.final = true;
      }
      const bool done = w.cancelled || w.final;
      work.push_back(std::move(w));
      it = done ? streams_.erase(it) : std::next(it);
    }
    lock.Unlock();
    for (Work& w : work) {
      if (w.cancelled) {
        (void)w.sender->SendError(Cancelled("request was cancelled"));
      } else if (w.final) {
        (void)w.sender->SendFinal();
      } else {
        (void)w.sender->Send(std::move(w.response), /*final=*/false);
      }
    }
    lock.Lock();
  }
}

void RepeatBackend::Finalize() {
  std::map<uint64_t, Stream> left;
  {
    MutexLock lock(mu_);
    stop_ = true;
    left.swap(streams_);
    cv_.NotifyAll();
  }
  if (worker_.joinable()) worker_.join();
  for (auto& [id, s] : left)
    (void)s.sender->SendError(Unavailable("model instance is shutting down"));
}

std::vector<MetricFamily> RepeatBackend::Metrics() const {
  const MetricLabels labels = {{"model", context_.model_name},
                               {"version", std::to_string(context_.model_version)},
                               {"instance", std::to_string(context_.instance_index)}};
  MutexLock lock(mu_);
  return {
      {"sluice_repeat_open_requests", MetricType::kGauge, "Streams the repeat backend is sending",
       {{labels, static_cast<double>(streams_.size()), {}}}},
      {"sluice_repeat_responses_total", MetricType::kCounter, "Responses the repeat backend sent",
       {{labels, static_cast<double>(responses_sent_), {}}}},
  };
}

}  // namespace sluice::backends

#include "ipc/message.h"

#include <cstring>

#include "common/tensor.h"
#include "ipc/instance_spec_codec.h"
#include "ipc/metric_codec.h"
#include "ipc/wire_buffer.h"

namespace sluice::ipc {
namespace {

constexpr uint8_t kParamBool = 0, kParamInt = 1, kParamDouble = 2, kParamString = 3;
constexpr uint8_t kDataInline = 0, kDataShm = 1;

Status CheckLength(std::string_view field, size_t n, size_t cap) {
  if (n > cap)
    return InvalidArgument(std::string(field) + " of " + std::to_string(n) +
                           " bytes exceeds the limit of " + std::to_string(cap));
  return Status::Ok();
}

// ---- encoding ----

class Encoder {
 public:
  explicit Encoder(const ShmOut* shm) : shm_(shm) {}
  ~Encoder() {
    if (!committed_ && shm_ != nullptr)
      for (const ShmBlock& b : taken_) (void)shm_->allocator->Free(b);
  }
  void Commit() { committed_ = true; }
  const std::vector<ShmBlock>& taken() const { return taken_; }
  WireWriter& w() { return w_; }

  Status Name(std::string_view field, std::string_view s, uint32_t cap) {
    RETURN_IF_ERROR(CheckLength(field, s.size(), cap));
    w_.Str(s);
    return Status::Ok();
  }

  Status Params(const Parameters& params) {
    if (params.size() > kMaxParameters)
      return InvalidArgument(std::to_string(params.size()) + " parameters exceed the limit of " +
                             std::to_string(kMaxParameters));
    w_.U32(static_cast<uint32_t>(params.size()));
    for (const auto& [key, value] : params) {
      RETURN_IF_ERROR(Name("parameter name", key, kMaxNameBytes));
      if (const bool* b = std::get_if<bool>(&value)) {
        w_.U8(kParamBool);
        w_.U8(*b ? 1 : 0);
      } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
        w_.U8(kParamInt);
        w_.I64(*i);
      } else if (const double* d = std::get_if<double>(&value)) {
        w_.U8(kParamDouble);
        w_.F64(*d);
      } else {
        w_.U8(kParamString);
        RETURN_IF_ERROR(Name("parameter '" + key + "'", std::get<std::string>(value),
                             kMaxParameterBytes));
      }
    }
    return Status::Ok();
  }

  Status Tensors(const std::vector<Tensor>& tensors) {
    if (tensors.size() > kMaxTensors)
      return InvalidArgument(std::to_string(tensors.size()) + " tensors exceed the limit of " +
                             std::to_string(kMaxTensors));
    w_.U32(static_cast<uint32_t>(tensors.size()));
    for (const Tensor& t : tensors) RETURN_IF_ERROR(OneTensor(t));
    return Status::Ok();
  }

  Status Status_(const Status& s) {
    w_.U32(static_cast<uint32_t>(s.code()));
    std::string_view m = s.message();
    w_.Str(m.substr(0, kMaxStatusMessageBytes));
    return Status::Ok();
  }

 private:
  Status OneTensor(const Tensor& t) {
    RETURN_IF_ERROR(Name("tensor name", t.name, kMaxNameBytes));
    w_.U8(static_cast<uint8_t>(t.datatype));
    if (t.shape.size() > kMaxRank)
      return InvalidArgument("tensor '" + t.name + "' has rank " + std::to_string(t.shape.size()) +
                             ", above the limit of " + std::to_string(kMaxRank));
    w_.U32(static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) w_.I64(d);
    if (shm_ != nullptr && t.data.size() > kInlineTensorLimit) {
      if (auto offset = shm_->allocator->Allocate(t.data.size())) {
        std::memcpy(shm_->area.data() + *offset, t.data.data(), t.data.size());
        taken_.push_back({*offset, t.data.size()});
        w_.U8(kDataShm);
        w_.U64(*offset);
        w_.U64(t.data.size());
        return Status::Ok();
      }
      // Area full: fall back to inline.
    }
    w_.U8(kDataInline);
    w_.Blob(t.data);
    return Status::Ok();
  }

  const ShmOut* shm_;
  WireWriter w_;
  std::vector<ShmBlock> taken_;
  bool committed_ = false;
};

Status EncodeInferRequest(Encoder& e, const InferRequest& r) {
  RETURN_IF_ERROR(e.Name("model name", r.model_name, kMaxNameBytes));
  e.w().I64(r.model_version);
  RETURN_IF_ERROR(e.Name("request id", r.id, kMaxNameBytes));
  RETURN_IF_ERROR(e.Params(r.parameters));
  RETURN_IF_ERROR(e.Tensors(r.inputs));
  if (r.requested_outputs.size() > kMaxTensors)
    return InvalidArgument("too many requested outputs");
  e.w().U32(static_cast<uint32_t>(r.requested_outputs.size()));
  for (const std::string& name : r.requested_outputs)
    RETURN_IF_ERROR(e.Name("requested output name", name, kMaxNameBytes));
  return Status::Ok();
}

Status EncodeInferResponse(Encoder& e, const InferResponse& r) {
  RETURN_IF_ERROR(e.Name("model name", r.model_name, kMaxNameBytes));
  e.w().I64(r.model_version);
  RETURN_IF_ERROR(e.Name("request id", r.id, kMaxNameBytes));
  RETURN_IF_ERROR(e.Params(r.parameters));
  return e.Tensors(r.outputs);
}

Status EncodeBody(Encoder& e, const Message& m) {
  WireWriter& w = e.w();
  switch (m.type()) {
    case MessageType::kInit:
      return EncodeInstanceSpec(std::get<InitMessage>(m.body).instance, w);
    case MessageType::kInitResult:
      return e.Status_(std::get<InitResultMessage>(m.body).status);
    case MessageType::kRequest:
      return EncodeInferRequest(e, std::get<RequestMessage>(m.body).request);
    case MessageType::kCancel:
    case MessageType::kShutdown:
    case MessageType::kRequestStarted:
      return Status::Ok();
    case MessageType::kResponse: {
      const ResponseEvent& ev = std::get<ResponseMessage>(m.body).event;
      w.U8(ev.final ? 1 : 0);
      RETURN_IF_ERROR(e.Status_(ev.status));
      w.U8(ev.has_response ? 1 : 0);
      if (ev.has_response) RETURN_IF_ERROR(EncodeInferResponse(e, ev.response));
      return Status::Ok();
    }
    case MessageType::kHeartbeat:
      w.U64(std::get<HeartbeatMessage>(m.body).sequence);
      return Status::Ok();
    case MessageType::kHeartbeatAck: {
      const auto& b = std::get<HeartbeatAckMessage>(m.body);
      w.U64(b.sequence);
      EncodeMetricFamilies(w, b.metrics);
      return Status::Ok();
    }
    case MessageType::kShmRelease: {
      const auto& b = std::get<ShmReleaseMessage>(m.body);
      if (b.blocks.size() > kMaxReleaseBlocks) return InvalidArgument("too many released blocks");
      w.U32(static_cast<uint32_t>(b.blocks.size()));
      for (const ShmBlock& blk : b.blocks) {
        w.U64(blk.offset);
        w.U64(blk.size);
      }
      return Status::Ok();
    }
  }
  return Internal("unknown message type");
}

// ---- decoding ----

class Decoder {
 public:
  Decoder(std::string_view payload, std::span<const char> in_area, std::vector<ShmBlock>* release)
      : r_(payload), area_(in_area), release_(release) {}
  WireReader& r() { return r_; }

  Result<Parameters> Params() {
    Parameters out;
    ASSIGN_OR_RETURN(uint32_t n, r_.Count("parameter count", kMaxParameters));
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(std::string key, r_.Str("parameter name", kMaxNameBytes));
      ASSIGN_OR_RETURN(uint8_t tag, r_.U8("parameter type"));
      switch (tag) {
        case kParamBool: {
          ASSIGN_OR_RETURN(bool v, r_.Bool("parameter '" + key + "'"));
          out[key] = v;
          break;
        }
        case kParamInt: {
          ASSIGN_OR_RETURN(int64_t v, r_.I64("parameter '" + key + "'"));
          out[key] = v;
          break;
        }
        case kParamDouble: {
          ASSIGN_OR_RETURN(double v, r_.F64("parameter '" + key + "'"));
          out[key] = v;
          break;
        }
        case kParamString: {
          ASSIGN_OR_RETURN(std::string v, r_.Str("parameter '" + key + "'", kMaxParameterBytes));
          out[key] = std::move(v);
          break;
        }
        default:
          return InvalidArgument("parameter '" + key + "' has unknown type tag " +
                                 std::to_string(tag));
      }
    }
    return out;
  }

  Result<std::vector<Tensor>> Tensors() {
    ASSIGN_OR_RETURN(uint32_t n, r_.Count("tensor count", kMaxTensors));
    std::vector<Tensor> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
      ASSIGN_OR_RETURN(Tensor t, OneTensor());
      out.push_back(std::move(t));
    }
    return out;
  }

  // Decodes a carried Status into `out`; the return value is the decoding result.
  Status CarriedStatus(Status* out) {
    ASSIGN_OR_RETURN(uint32_t code, r_.U32("status code"));
    if (code > static_cast<uint32_t>(StatusCode::kUnknown))
      return InvalidArgument("unknown status code " + std::to_string(code));
    ASSIGN_OR_RETURN(std::string msg, r_.Str("status message", kMaxStatusMessageBytes));
    if (code == 0) {
      if (!msg.empty()) return InvalidArgument("OK status with a message");
      *out = Status::Ok();
      return Status::Ok();
    }
    *out = Status(static_cast<StatusCode>(code), std::move(msg));
    return Status::Ok();
  }

 private:
  Result<Tensor> OneTensor() {
    Tensor t;
    ASSIGN_OR_RETURN(t.name, r_.Str("tensor name", kMaxNameBytes));
    ASSIGN_OR_RETURN(uint8_t dt, r_.U8("tensor datatype"));
    if (dt == 0 || dt > static_cast<uint8_t>(DataType::kBytes))
      return InvalidArgument("tensor '" + t.name + "' has unknown datatype " + std::to_string(dt));
    t.datatype = static_cast<DataType>(dt);
    ASSIGN_OR_RETURN(uint32_t rank, r_.Count("tensor '" + t.name + "' rank", kMaxRank));
    t.shape.resize(rank);
    for (uint32_t i = 0; i < rank; ++i) {
      ASSIGN_OR_RETURN(t.shape[i], r_.I64("tensor '" + t.name + "' dimension"));
    }
    ASSIGN_OR_RETURN(uint8_t where, r_.U8("tensor '" + t.name + "' data location"));
    if (where == kDataInline) {
      ASSIGN_OR_RETURN(t.data, r_.Blob("tensor '" + t.name + "' data", kMaxPayloadBytes));
    } else if (where == kDataShm) {
      ASSIGN_OR_RETURN(uint64_t offset, r_.U64("tensor '" + t.name + "' shared memory offset"));
      ASSIGN_OR_RETURN(uint64_t size, r_.U64("tensor '" + t.name + "' shared memory size"));
      // Overflow-safe: offset + size <= area size, written without the addition.
      if (offset > area_.size() || size > area_.size() - offset)
        return InvalidArgument("tensor '" + t.name + "': shared memory block (offset " +
                               std::to_string(offset) + ", size " + std::to_string(size) +
                               ") lies outside the shared memory area of " +
                               std::to_string(area_.size()) + " bytes");
      if (size == 0) return InvalidArgument("tensor '" + t.name + "': empty shared memory block");
      t.data.assign(area_.data() + offset, size);
      release_->push_back({offset, size});
    } else {
      return InvalidArgument("tensor '" + t.name + "' has unknown data location " +
                             std::to_string(where));
    }
    RETURN_IF_ERROR(ValidateTensorData(t));
    return t;
  }

  WireReader r_;
  std::span<const char> area_;
  std::vector<ShmBlock>* release_;
};

Result<MessageBody> DecodeBody(MessageType type, Decoder& d) {
  WireReader& r = d.r();
  switch (type) {
    case MessageType::kInit: {
      InitMessage b;
      ASSIGN_OR_RETURN(b.instance, DecodeInstanceSpec(r));
      return MessageBody(std::move(b));
    }
    case MessageType::kInitResult: {
      InitResultMessage b;
      RETURN_IF_ERROR(d.CarriedStatus(&b.status));
      return MessageBody(std::move(b));
    }
    case MessageType::kRequest: {
      RequestMessage b;
      InferRequest& q = b.request;
      ASSIGN_OR_RETURN(q.model_name, r.Str("model name", kMaxNameBytes));
      ASSIGN_OR_RETURN(q.model_version, r.I64("model version"));
      ASSIGN_OR_RETURN(q.id, r.Str("request id", kMaxNameBytes));
      ASSIGN_OR_RETURN(q.parameters, d.Params());
      ASSIGN_OR_RETURN(q.inputs, d.Tensors());
      ASSIGN_OR_RETURN(uint32_t n, r.Count("requested output count", kMaxTensors));
      for (uint32_t i = 0; i < n; ++i) {
        ASSIGN_OR_RETURN(std::string name, r.Str("requested output name", kMaxNameBytes));
        q.requested_outputs.push_back(std::move(name));
      }
      return MessageBody(std::move(b));
    }
    case MessageType::kCancel:
      return MessageBody(CancelMessage{});
    case MessageType::kShutdown:
      return MessageBody(ShutdownMessage{});
    case MessageType::kRequestStarted:
      return MessageBody(RequestStartedMessage{});
    case MessageType::kResponse: {
      ResponseMessage b;
      ResponseEvent& ev = b.event;
      ASSIGN_OR_RETURN(ev.final, r.Bool("final flag"));
      RETURN_IF_ERROR(d.CarriedStatus(&ev.status));
      ASSIGN_OR_RETURN(ev.has_response, r.Bool("has response"));
      if (!ev.status.ok() && !ev.final) return InvalidArgument("error response without the final flag");
      if (ev.has_response) {
        InferResponse& p = ev.response;
        ASSIGN_OR_RETURN(p.model_name, r.Str("model name", kMaxNameBytes));
        ASSIGN_OR_RETURN(p.model_version, r.I64("model version"));
        ASSIGN_OR_RETURN(p.id, r.Str("request id", kMaxNameBytes));
        ASSIGN_OR_RETURN(p.parameters, d.Params());
        ASSIGN_OR_RETURN(p.outputs, d.Tensors());
      }
      return MessageBody(std::move(b));
    }
    case MessageType::kHeartbeat: {
      ASSIGN_OR_RETURN(uint64_t seq, r.U64("heartbeat sequence"));
      return MessageBody(HeartbeatMessage{seq});
    }
    case MessageType::kHeartbeatAck: {
      HeartbeatAckMessage b;
      ASSIGN_OR_RETURN(b.sequence, r.U64("heartbeat sequence"));
      ASSIGN_OR_RETURN(b.metrics, DecodeMetricFamilies(r, &b.metrics_dropped));
      return MessageBody(std::move(b));
    }
    case MessageType::kShmRelease: {
      ShmReleaseMessage b;
      ASSIGN_OR_RETURN(uint32_t n, r.Count("released block count", kMaxReleaseBlocks));
      if (uint64_t{n} * 16 > r.remaining())
        return InvalidArgument("released block count " + std::to_string(n) +
                               " runs past the end of the message");
      b.blocks.resize(n);
      for (uint32_t i = 0; i < n; ++i) {
        ASSIGN_OR_RETURN(b.blocks[i].offset, r.U64("released block offset"));
        ASSIGN_OR_RETURN(b.blocks[i].size, r.U64("released block size"));
      }
      return MessageBody(std::move(b));
    }
  }
  return InvalidArgument("unknown message type");
}

uint16_t RawType(MessageType t) { return static_cast<uint16_t>(t); }

void PutLE(std::string& s, size_t pos, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s[pos + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint64_t GetLE(std::string_view s, size_t pos, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<unsigned char>(s[pos + i])) << (8 * i);
  return v;
}

}  // namespace

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kInit: return "Init";
    case MessageType::kInitResult: return "InitResult";
    case MessageType::kRequest: return "Request";
    case MessageType::kCancel: return "Cancel";
    case MessageType::kResponse: return "Response";
    case MessageType::kHeartbeat: return "Heartbeat";
    case MessageType::kHeartbeatAck: return "HeartbeatAck";
    case MessageType::kShutdown: return "Shutdown";
    case MessageType::kShmRelease: return "ShmRelease";
    case MessageType::kRequestStarted: return "RequestStarted";
  }
  return "?";
}

std::optional<MessageType> ToMessageType(uint16_t raw) {
  if (raw < RawType(MessageType::kInit) || raw > RawType(MessageType::kRequestStarted))
    return std::nullopt;
  return static_cast<MessageType>(raw);
}

bool SentByStub(MessageType type) {
  switch (type) {
    case MessageType::kInitResult:
    case MessageType::kResponse:
    case MessageType::kHeartbeatAck:
    case MessageType::kShmRelease:
    case MessageType::kRequestStarted:
      return true;
    case MessageType::kInit:
    case MessageType::kRequest:
    case MessageType::kCancel:
    case MessageType::kHeartbeat:
    case MessageType::kShutdown:
      return false;
  }
  return false;
}

bool SentByServer(MessageType type) {
  switch (type) {
    case MessageType::kInit:
    case MessageType::kRequest:
    case MessageType::kCancel:
    case MessageType::kHeartbeat:
    case MessageType::kShutdown:
    case MessageType::kShmRelease:
      return true;
    case MessageType::kInitResult:
    case MessageType::kResponse:
    case MessageType::kHeartbeatAck:
    case MessageType::kRequestStarted:
      return false;
  }
  return false;
}

MessageType Message::type() const {
  return static_cast<MessageType>(body.index() + 1);
}

Result<FrameHeader> DecodeFrameHeader(std::string_view bytes) {
  if (bytes.size() < kFrameHeaderSize)
    return InvalidArgument("truncated message header (" + std::to_string(bytes.size()) + " of " +
                           std::to_string(kFrameHeaderSize) + " bytes)");
  const uint64_t magic = GetLE(bytes, 0, 4);
  if (magic != kFrameMagic) return InvalidArgument("bad message header magic");
  const auto raw_type = static_cast<uint16_t>(GetLE(bytes, 4, 2));
  auto type = ToMessageType(raw_type);
  if (!type) return InvalidArgument("unknown message type " + std::to_string(raw_type));
  if (GetLE(bytes, 6, 2) != 0 || GetLE(bytes, 12, 4) != 0)
    return InvalidArgument("non-zero reserved bits in the message header");
  FrameHeader h;
  h.type = *type;
  h.payload_length = static_cast<uint32_t>(GetLE(bytes, 8, 4));
  h.request_id = GetLE(bytes, 16, 8);
  if (h.payload_length > kMaxPayloadBytes)
    return InvalidArgument(std::string(MessageTypeName(h.type)) + " message length " +
                           std::to_string(h.payload_length) + " exceeds the limit of " +
                           std::to_string(kMaxPayloadBytes));
  return h;
}

Result<std::string> EncodeMessage(const Message& message, const ShmOut* shm,
                                  std::vector<ShmBlock>* taken) {
  Encoder e(shm);
  std::string& out = e.w().buffer();
  out.assign(kFrameHeaderSize, '\0');
  RETURN_IF_ERROR(EncodeBody(e, message));
  const size_t payload = out.size() - kFrameHeaderSize;
  if (payload > kMaxPayloadBytes)
    return InvalidArgument(std::string(MessageTypeName(message.type())) + " message of " +
                           std::to_string(payload) + " bytes exceeds the limit of " +
                           std::to_string(kMaxPayloadBytes));
  PutLE(out, 0, kFrameMagic, 4);
  PutLE(out, 4, RawType(message.type()), 2);
  PutLE(out, 8, payload, 4);
  PutLE(out, 16, message.request_id, 8);
  e.Commit();
  if (taken != nullptr) *taken = e.taken();
  return e.w().Take();
}

Result<Message> DecodeMessage(const FrameHeader& header, std::string_view payload,
                              std::span<const char> in_area, std::vector<ShmBlock>* release) {
  if (payload.size() != header.payload_length)
    return InvalidArgument("payload of " + std::to_string(payload.size()) +
                           " bytes, header says " + std::to_string(header.payload_length));
  Decoder d(payload, in_area, release);
  auto body = DecodeBody(header.type, d);
  const std::string what = std::string(MessageTypeName(header.type)) + " message";
  if (!body.ok()) return body.status().WithPrefix(what);
  RETURN_IF_ERROR(d.r().ExpectEnd(what));
  return Message{header.request_id, std::move(body).value()};
}

}  // namespace sluice::ipc

#include "tools/client/grpc/stream_infer_client.h"

#include <cstring>
#include <limits>

namespace sluice::client {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

Status FromGrpcStatus(const grpc::Status& status) {
  const std::string& m = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::CANCELLED: return Cancelled(m);
    case grpc::StatusCode::INVALID_ARGUMENT: return InvalidArgument(m);
    case grpc::StatusCode::NOT_FOUND: return NotFound(m);
    case grpc::StatusCode::ALREADY_EXISTS: return AlreadyExists(m);
    case grpc::StatusCode::UNAVAILABLE: return Unavailable(m);
    case grpc::StatusCode::UNIMPLEMENTED: return Unsupported(m);
    case grpc::StatusCode::DEADLINE_EXCEEDED: return DeadlineExceeded(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return ResourceExhausted(m);
    case grpc::StatusCode::INTERNAL: return Internal(m);
    default: return Status(StatusCode::kUnknown, m);
  }
}

Result<std::unique_ptr<StreamInferClient>> StreamInferClient::Open(
    const std::shared_ptr<grpc::Channel>& channel, const StreamOptions& options) {
  std::unique_ptr<StreamInferClient> c(new StreamInferClient());
  c->stub_ = inference::GRPCInferenceService::NewStub(channel);
  if (options.deadline) {
    c->context_.set_deadline(std::chrono::system_clock::now() + *options.deadline);
  }
  for (const auto& [k, v] : options.metadata) c->context_.AddMetadata(k, v);
  c->call_ = c->stub_->ModelStreamInfer(&c->context_);
  if (!c->call_) return Unavailable("ModelStreamInfer: could not start the call");
  return c;
}

StreamInferClient::~StreamInferClient() {
  if (call_ && !finished_) {
    context_.TryCancel();
    (void)Finish();
  }
}

Status StreamInferClient::Write(const inference::ModelInferRequest& request) {
  if (writes_done_) return InvalidArgument("ModelStreamInfer: write after WritesDone");
  if (!call_->Write(request)) return Unavailable("ModelStreamInfer: the stream is closed");
  return Status::Ok();
}

Result<std::optional<inference::ModelStreamInferResponse>> StreamInferClient::Read() {
  inference::ModelStreamInferResponse response;
  if (call_->Read(&response)) return std::optional(std::move(response));
  return std::optional<inference::ModelStreamInferResponse>();
}

void StreamInferClient::WritesDone() {
  if (writes_done_) return;
  writes_done_ = true;
  call_->WritesDone();
}

void StreamInferClient::Cancel() { context_.TryCancel(); }

grpc::Status StreamInferClient::Finish() {
  if (finished_) return final_status_;
  // Drain what the server still sends, so Finish does not wait on unread messages.
  inference::ModelStreamInferResponse ignored;
  while (call_->Read(&ignored)) {
  }
  final_status_ = call_->Finish();
  finished_ = true;
  return final_status_;
}

namespace {

constexpr size_t kMaxElements = size_t{1} << 26;
constexpr int kMaxDepth = 16;

Status Flatten(const nlohmann::json& v, int depth, std::vector<const nlohmann::json*>* out) {
  if (depth > kMaxDepth) return InvalidArgument("tensor data nested deeper than 16");
  if (v.is_array()) {
    for (const auto& e : v) RETURN_IF_ERROR(Flatten(e, depth + 1, out));
    return Status::Ok();
  }
  if (out->size() >= kMaxElements) return InvalidArgument("tensor data has too many elements");
  out->push_back(&v);
  return Status::Ok();
}

template <class T>
void Append(std::string* raw, T value) {
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));  // little-endian hosts only (x86-64, aarch64)
  raw->append(buf, sizeof(T));
}

template <class T>
Status AppendInt(std::string* raw, const nlohmann::json& e, const std::string& name) {
  if (e.is_boolean()) {
    Append<T>(raw, e.get<bool>() ? 1 : 0);
    return Status::Ok();
  }
  if (!e.is_number_integer()) return InvalidArgument("input '" + name + "': expected integers");
  if constexpr (std::is_signed_v<T>) {
    int64_t v = e.get<int64_t>();
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max()) {
      return InvalidArgument("input '" + name + "': value " + std::to_string(v) + " out of range");
    }
    Append<T>(raw, static_cast<T>(v));
  } else {
    if (e.is_number_integer() && !e.is_number_unsigned() && e.get<int64_t>() < 0) {
      return InvalidArgument("input '" + name + "': negative value for an unsigned type");
    }
    uint64_t v = e.get<uint64_t>();
    if (v > std::numeric_limits<T>::max()) {
      return InvalidArgument("input '" + name + "': value " + std::to_string(v) + " out of range");
    }
    Append<T>(raw, static_cast<T>(v));
  }
  return Status::Ok();
}

Status Encode(const std::string& name, const std::string& dt,
              const std::vector<const nlohmann::json*>& elems, std::string* raw) {
  for (const nlohmann::json* p : elems) {
    const nlohmann::json& e = *p;
    if (dt == "BOOL") {
      if (!e.is_boolean()) return InvalidArgument("input '" + name + "': expected booleans");
      raw->push_back(e.get<bool>() ? 1 : 0);
    } else if (dt == "INT8") { RETURN_IF_ERROR(AppendInt<int8_t>(raw, e, name));
    } else if (dt == "INT16") { RETURN_IF_ERROR(AppendInt<int16_t>(raw, e, name));
    } else if (dt == "INT32") { RETURN_IF_ERROR(AppendInt<int32_t>(raw, e, name));
    } else if (dt == "INT64") { RETURN_IF_ERROR(AppendInt<int64_t>(raw, e, name));
    } else if (dt == "UINT8") { RETURN_IF_ERROR(AppendInt<uint8_t>(raw, e, name));
    } else if (dt == "UINT16") { RETURN_IF_ERROR(AppendInt<uint16_t>(raw, e, name));
    } else if (dt == "UINT32") { RETURN_IF_ERROR(AppendInt<uint32_t>(raw, e, name));
    } else if (dt == "UINT64") { RETURN_IF_ERROR(AppendInt<uint64_t>(raw, e, name));
    } else if (dt == "FP32" || dt == "FP64") {
      if (!e.is_number()) return InvalidArgument("input '" + name + "': expected numbers");
      if (dt == "FP32") {
        Append<float>(raw, e.get<float>());
      } else {
        Append<double>(raw, e.get<double>());
      }
    } else if (dt == "BYTES") {
      std::string s = e.is_string() ? e.get<std::string>() : e.dump();
      if (s.size() > std::numeric_limits<uint32_t>::max()) {
        return InvalidArgument("input '" + name + "': element too large");
      }
      Append<uint32_t>(raw, static_cast<uint32_t>(s.size()));
      raw->append(s);
    } else {
      return Unsupported("input '" + name + "': datatype '" + dt + "' is not supported");
    }
  }
  return Status::Ok();
}

void SetParameter(google::protobuf::Map<std::string, inference::InferParameter>* params,
                  const std::string& key, const nlohmann::json& v) {
  inference::InferParameter p;
  if (v.is_boolean()) {
    p.set_bool_param(v.get<bool>());
  } else if (v.is_number_integer()) {
    p.set_int64_param(v.get<int64_t>());
  } else if (v.is_number()) {
    p.set_double_param(v.get<double>());
  } else if (v.is_string()) {
    p.set_string_param(v.get<std::string>());
  } else {
    p.set_string_param(v.dump());
  }
  (*params)[key] = p;
}

}  // namespace

Result<inference::ModelInferRequest> RequestFromJson(std::string_view model,
                                                     const nlohmann::json& body) {
  if (!body.is_object()) return InvalidArgument("request body must be a JSON object");
  inference::ModelInferRequest req;
  req.set_model_name(std::string(model));
  if (auto id = body.find("id"); id != body.end() && id->is_string()) req.set_id(*id);
  if (auto params = body.find("parameters"); params != body.end() && params->is_object()) {
    for (auto it = params->begin(); it != params->end(); ++it) {
      SetParameter(req.mutable_parameters(), it.key(), it.value());
    }
  }
  auto inputs = body.find("inputs");
  if (inputs == body.end() || !inputs->is_array()) {
    return InvalidArgument("request body needs an 'inputs' array");
  }
  for (const auto& in : *inputs) {
    if (!in.is_object() || !in.contains("name") || !in["name"].is_string() ||
        !in.contains("datatype") || !in["datatype"].is_string() || !in.contains("shape") ||
        !in["shape"].is_array() || !in.contains("data")) {
      return InvalidArgument("each input needs name, datatype, shape and data");
    }
    std::string name = in["name"];
    std::string dt = in["datatype"];
    auto* tensor = req.add_inputs();
    tensor->set_name(name);
    tensor->set_datatype(dt);
    uint64_t count = 1;
    for (const auto& d : in["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return InvalidArgument("input '" + name + "': bad shape");
      }
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > kMaxElements / dim) {
        return InvalidArgument("input '" + name + "': shape has too many elements");
      }
      count *= dim;
      tensor->add_shape(d.get<int64_t>());
    }
    std::vector<const nlohmann::json*> elems;
    RETURN_IF_ERROR(Flatten(in["data"], 0, &elems));
    if (elems.size() != count) {
      return InvalidArgument("input '" + name + "': " + std::to_string(elems.size()) +
                             " elements for a shape of " + std::to_string(count));
    }
    std::string* raw = req.add_raw_input_contents();
    RETURN_IF_ERROR(Encode(name, dt, elems, raw));
  }
  if (auto outputs = body.find("outputs"); outputs != body.end() && outputs->is_array()) {
    for (const auto& out : *outputs) {
      if (out.is_object() && out.contains("name") && out["name"].is_string()) {
        req.add_outputs()->set_name(out["name"].get<std::string>());
      }
    }
  }
  return req;
}

nlohmann::json ParameterValue(
    const google::protobuf::Map<std::string, inference::InferParameter>& params,
    const std::string& name) {
  auto it = params.find(name);
  if (it == params.end()) return nullptr;
  const inference::InferParameter& p = it->second;
  switch (p.parameter_choice_case()) {
    case inference::InferParameter::kBoolParam: return p.bool_param();
    case inference::InferParameter::kInt64Param: return p.int64_param();
    case inference::InferParameter::kStringParam: return p.string_param();
    case inference::InferParameter::kDoubleParam: return p.double_param();
    case inference::InferParameter::kUint64Param: return p.uint64_param();
    case inference::InferParameter::PARAMETER_CHOICE_NOT_SET: return nullptr;
  }
  return nullptr;
}

bool IsFinalResponse(const inference::ModelInferResponse& response) {
  nlohmann::json v = ParameterValue(response.parameters(), "triton_final_response");
  return v.is_boolean() && v.get<bool>();
}

namespace {

template <class T>
Result<nlohmann::json> DecodeFixed(const std::string& raw, const std::string& name) {
  if (raw.size() % sizeof(T) != 0) {
    return InvalidArgument("output '" + name + "': " + std::to_string(raw.size()) +
                           " bytes is not a multiple of the element size");
  }
  nlohmann::json arr = nlohmann::json::array();
  for (size_t off = 0; off < raw.size(); off += sizeof(T)) {
    T v;
    std::memcpy(&v, raw.data() + off, sizeof(T));
    if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
      arr.push_back(static_cast<int>(v));
    } else {
      arr.push_back(v);
    }
  }
  return arr;
}

Result<nlohmann::json> DecodeRaw(const std::string& dt, const std::string& raw,
                                 const std::string& name) {
  if (dt == "BOOL") {
    nlohmann::json arr = nlohmann::json::array();
    for (char c : raw) arr.push_back(c != 0);
    return arr;
  }
  if (dt == "INT8") return DecodeFixed<int8_t>(raw, name);
  if (dt == "INT16") return DecodeFixed<int16_t>(raw, name);
  if (dt == "INT32") return DecodeFixed<int32_t>(raw, name);
  if (dt == "INT64") return DecodeFixed<int64_t>(raw, name);
  if (dt == "UINT8") return DecodeFixed<uint8_t>(raw, name);
  if (dt == "UINT16") return DecodeFixed<uint16_t>(raw, name);
  if (dt == "UINT32") return DecodeFixed<uint32_t>(raw, name);
  if (dt == "UINT64") return DecodeFixed<uint64_t>(raw, name);
  if (dt == "FP32") return DecodeFixed<float>(raw, name);
  if (dt == "FP64") return DecodeFixed<double>(raw, name);
  if (dt == "BYTES") {
    nlohmann::json arr = nlohmann::json::array();
    size_t off = 0;
    while (off < raw.size()) {
      if (raw.size() - off < 4) return InvalidArgument("output '" + name + "': truncated length");
      uint32_t len;
      std::memcpy(&len, raw.data() + off, 4);
      off += 4;
      if (len > raw.size() - off) {
        return InvalidArgument("output '" + name + "': element of " + std::to_string(len) +
                               " bytes overruns the tensor");
      }
      arr.push_back(std::string(raw.data() + off, len));
      off += len;
    }
    return arr;
  }
  return Unsupported("output '" + name + "': datatype '" + dt + "' is not decoded");
}

nlohmann::json TypedContents(const inference::InferTensorContents& c) {
  nlohmann::json arr = nlohmann::json::array();
  for (bool v : c.bool_contents()) arr.push_back(v);
  for (int32_t v : c.int_contents()) arr.push_back(v);
  for (int64_t v : c.int64_contents()) arr.push_back(v);
  for (uint32_t v : c.uint_contents()) arr.push_back(v);
  for (uint64_t v : c.uint64_contents()) arr.push_back(v);
  for (float v : c.fp32_contents()) arr.push_back(v);
  for (double v : c.fp64_contents()) arr.push_back(v);
  for (const std::string& v : c.bytes_contents()) arr.push_back(v);
  return arr;
}

}  // namespace

Result<nlohmann::json> OutputsToJson(const inference::ModelInferResponse& response) {
  nlohmann::json out = nlohmann::json::object();
  const bool raw = response.raw_output_contents_size() > 0;
  if (raw && response.raw_output_contents_size() != response.outputs_size()) {
    return InvalidArgument("response has " + std::to_string(response.outputs_size()) +
                           " outputs but " +
                           std::to_string(response.raw_output_contents_size()) +
                           " raw contents");
  }
  for (int i = 0; i < response.outputs_size(); ++i) {
    const auto& t = response.outputs(i);
    if (raw) {
      ASSIGN_OR_RETURN(out[t.name()], DecodeRaw(t.datatype(), response.raw_output_contents(i),
                                                t.name()));
    } else {
      out[t.name()] = TypedContents(t.contents());
    }
  }
  return out;
}

}  // namespace sluice::client

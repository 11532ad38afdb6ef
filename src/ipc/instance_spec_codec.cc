#include "ipc/instance_spec_codec.h"

#include <string>

#include "ipc/message.h"

namespace sluice::ipc {
namespace {

constexpr uint8_t kCpu = 0;
constexpr uint8_t kGpu = 1;

Status PutStr(WireWriter& w, std::string_view field, std::string_view s, uint32_t cap) {
  if (s.size() > cap)
    return InvalidArgument(std::string(field) + " of " + std::to_string(s.size()) +
                           " bytes exceeds the limit of " + std::to_string(cap));
  w.Str(s);
  return Status::Ok();
}

}  // namespace

Status EncodeInstanceSpec(const InstanceSpec& spec, WireWriter& w) {
  std::string config;
  if (!spec.config.SerializeToString(&config))
    return InvalidArgument("the model config does not serialize");
  RETURN_IF_ERROR(PutStr(w, "model name", spec.model_name, kMaxNameBytes));
  w.I64(spec.model_version);
  RETURN_IF_ERROR(PutStr(w, "model config", config, kMaxConfigBytes));
  RETURN_IF_ERROR(PutStr(w, "model directory", spec.model_dir, kMaxPathBytes));
  RETURN_IF_ERROR(PutStr(w, "version directory", spec.version_dir, kMaxPathBytes));
  w.U32(static_cast<uint32_t>(spec.instance_index));
  switch (spec.kind) {
    case InstanceKind::kCpu:
      w.U8(kCpu);
      break;
    case InstanceKind::kGpu:
      w.U8(kGpu);
      break;
  }
  w.U32(static_cast<uint32_t>(spec.gpu_id));
  w.U32(static_cast<uint32_t>(spec.cpu_threads));
  w.U8(spec.verbose_log ? 1 : 0);
  return Status::Ok();
}

Result<InstanceSpec> DecodeInstanceSpec(WireReader& r) {
  InstanceSpec spec;
  ASSIGN_OR_RETURN(spec.model_name, r.Str("model name", kMaxNameBytes));
  ASSIGN_OR_RETURN(spec.model_version, r.I64("model version"));
  ASSIGN_OR_RETURN(std::string config, r.Str("model config", kMaxConfigBytes));
  if (!spec.config.ParseFromString(config))
    return InvalidArgument("the model config does not parse");
  ASSIGN_OR_RETURN(spec.model_dir, r.Str("model directory", kMaxPathBytes));
  ASSIGN_OR_RETURN(spec.version_dir, r.Str("version directory", kMaxPathBytes));
  ASSIGN_OR_RETURN(uint32_t index, r.U32("instance index"));
  spec.instance_index = static_cast<int32_t>(index);
  ASSIGN_OR_RETURN(uint8_t kind, r.U8("instance kind"));
  if (kind != kCpu && kind != kGpu)
    return InvalidArgument("unknown instance kind " + std::to_string(kind));
  spec.kind = kind == kGpu ? InstanceKind::kGpu : InstanceKind::kCpu;
  ASSIGN_OR_RETURN(uint32_t gpu, r.U32("gpu id"));
  spec.gpu_id = static_cast<int32_t>(gpu);
  ASSIGN_OR_RETURN(uint32_t threads, r.U32("cpu threads"));
  spec.cpu_threads = static_cast<int32_t>(threads);
  ASSIGN_OR_RETURN(spec.verbose_log, r.Bool("verbose log"));
  if (spec.instance_index < 0 || spec.cpu_threads < 0 || spec.gpu_id < -1)
    return InvalidArgument("negative instance index, thread count or GPU id");
  return spec;
}

}  // namespace sluice::ipc

#pragma once
// The wire form of an InstanceSpec (common/instance_spec.h), the body of the Init message: the
// fields in declaration order, the config as its serialized protobuf. Decoding is bounded by
// message.h's caps and refuses a config that does not parse, a negative index, thread count or
// GPU id below -1, and an unknown kind.

#include "common/instance_spec.h"
#include "common/status.h"
#include "ipc/wire_buffer.h"

namespace sluice::ipc {

// InvalidArgument when a field passes its cap (named in the error).
Status EncodeInstanceSpec(const InstanceSpec& spec, WireWriter& w);
Result<InstanceSpec> DecodeInstanceSpec(WireReader& r);

}  // namespace sluice::ipc

#pragma once
// Triton's LogSettings RPC over common/log_settings.h: the request's settings are checked
// as a whole (names, value types, values) and applied only if all are valid. `log_file`
// is never settable over the network (Unsupported).

#include "common/log_settings.h"
#include "common/status.h"
#include "grpc_service.pb.h"

namespace sluice::grpc_frontend {

// Returns `current` with the request's settings applied, or the first invalid setting.
Result<LogSettings> ApplyLogSettingsRequest(const inference::LogSettingsRequest& request,
                                            const LogSettings& current);

void RenderLogSettings(const LogSettings& settings, inference::LogSettingsResponse* out);

}  // namespace sluice::grpc_frontend

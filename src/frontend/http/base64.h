#pragma once
// Strict base64 (RFC 4648 standard alphabet, '=' padding optional) for load-override files.

#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::http {

// InvalidArgument naming the offset of the first bad character or a bad length.
Result<std::string> Base64Decode(std::string_view in);
std::string Base64Encode(std::string_view in);

}  // namespace sluice::http

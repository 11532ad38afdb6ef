#pragma once
// Request bodies sent compressed (Content-Encoding: gzip or deflate, as Triton's HTTP client
// sends with `request_compression_algorithm`): decoded before /infer parses them, as
// Triton's HTTP server does. Responses are never compressed (always allowed by HTTP).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::http {

// Decodes `body` per the Content-Encoding value `encoding` (case-insensitive, surrounding
// blanks ignored). nullopt when the body is not encoded (empty or "identity"): use it as is.
// "gzip": RFC 1952; "deflate": RFC 1950 zlib format (what zlib.compress writes), raw RFC 1951
// deflate accepted too. Errors: Unsupported for any other encoding; InvalidArgument for a
// corrupt or truncated stream, trailing bytes, or more than `max_bytes` decoded (bounded:
// decoding stops at the limit).
Result<std::optional<std::string>> DecodeContentEncoding(std::string_view encoding,
                                                         std::string_view body, size_t max_bytes);

}  // namespace sluice::http

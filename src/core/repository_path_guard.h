#pragma once
// Name and path checks for everything that reaches the filesystem from a request or a
// config: model names (Triton CVE-2023-31036) and relative paths that must stay under a
// root (load-override files). Pure functions; thread-safe.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::core {

inline constexpr size_t kMaxModelNameLength = 255;
// Caps on a relative path given by a client: total bytes and components.
inline constexpr size_t kMaxRelativePathLength = 1024;
inline constexpr size_t kMaxRelativePathComponents = 32;

// Untrusted text made safe for a message: quotes and backslashes escaped, control and
// non-ASCII bytes as \xNN, cut after 128 bytes ("...").
std::string EscapeForMessage(std::string_view text);
// EscapeForMessage between single quotes: 'text'.
std::string QuoteForMessage(std::string_view text);

// OK when `name` matches [A-Za-z0-9_.-]+, is not "." or "..", and is at most
// kMaxModelNameLength bytes. InvalidArgument otherwise; the message names the model
// (escaped) and the rule it breaks.
Status ValidateModelName(std::string_view name);

// The lexical checks on a '/'-separated relative path from a client or a config, without
// touching the filesystem. Refused (InvalidArgument naming `what` and the path): empty,
// absolute, a NUL byte, a backslash, a "." or ".." component, an empty component ("a//b",
// "a/"), longer than kMaxRelativePathLength or deeper than kMaxRelativePathComponents.
Status ValidateRelativePath(std::string_view relative, std::string_view what = "path");

// Resolves `relative` under `root`: ValidateRelativePath, then refused when a part that
// exists is a dangling symlink, or when the canonical form (symlinks of the parts that exist
// are followed) is not strictly inside the canonical `root`. Messages name `relative`,
// never `root`. `root` must exist.
// Returns canonical(root) / relative, with the existing prefix's symlinks resolved.
// Note: this is a check at one moment; callers that then create files must not follow
// symlinks they did not create (PrivateModelDir creates every directory itself).
Result<std::filesystem::path> ResolveUnder(const std::filesystem::path& root,
                                           std::string_view relative);

}  // namespace sluice::core

#include "core/repository_path_guard.h"

#include <string>
#include <system_error>

namespace sluice::core {

std::string EscapeForMessage(std::string_view s) {
  constexpr size_t kMaxShown = 128;
  std::string out;
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\'' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out;
}

std::string QuoteForMessage(std::string_view s) {
  // Appended, not "'" + EscapeForMessage(s) + "'": GCC 12 at -O3 reports a false -Wrestrict
  // overlap in operator+(const char*, std::string&&) (GCC bug 105651).
  std::string out = "'";
  out += EscapeForMessage(s);
  out += '\'';
  return out;
}

namespace {

bool IsNameChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// True when `path` lies strictly below `root` (both canonical / lexically normal).
bool IsStrictlyInside(const std::filesystem::path& root, const std::filesystem::path& path) {
  auto r = root.begin();
  auto p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (p == path.end() || *r != *p) return false;
  }
  // Trailing empty component of a root like "/a/b/" compares as "" and is skipped above.
  return p != path.end();
}

}  // namespace

Status ValidateModelName(std::string_view name) {
  if (name.empty()) return InvalidArgument("model name must not be empty");
  if (name.size() > kMaxModelNameLength) {
    return InvalidArgument("model name '" + EscapeForMessage(name) + "' is longer than " +
                           std::to_string(kMaxModelNameLength) + " bytes");
  }
  if (name == "." || name == "..") {
    return InvalidArgument("model name '" + std::string(name) + "' is not allowed");
  }
  for (char c : name) {
    if (!IsNameChar(c)) {
      return InvalidArgument("model name '" + EscapeForMessage(name) +
                             "' is invalid: only letters, digits, '_', '.' and '-' are allowed");
    }
  }
  return Status::Ok();
}

Status ValidateRelativePath(std::string_view relative, std::string_view what) {
  const std::string shown = std::string(what) + " '" + EscapeForMessage(relative) + "'";
  if (relative.empty()) return InvalidArgument(std::string(what) + " must not be empty");
  if (relative.size() > kMaxRelativePathLength) {
    return InvalidArgument(shown + " is longer than " + std::to_string(kMaxRelativePathLength) +
                           " bytes");
  }
  if (relative.front() == '/') return InvalidArgument(shown + " must be relative");
  size_t components = 0;
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string_view::npos) end = relative.size();
    const std::string_view part = relative.substr(start, end - start);
    if (part.empty()) return InvalidArgument(shown + " has an empty component");
    if (part == "." || part == "..") {
      return InvalidArgument(shown + " must not contain '" + std::string(part) + "' components");
    }
    for (char c : part) {
      if (c == '\0' || c == '\\') {
        return InvalidArgument(shown + " contains a NUL byte or a backslash");
      }
    }
    if (++components > kMaxRelativePathComponents) {
      return InvalidArgument(shown + " has more than " +
                             std::to_string(kMaxRelativePathComponents) + " components");
    }
    start = end + 1;
  }
  return Status::Ok();
}

Result<std::filesystem::path> ResolveUnder(const std::filesystem::path& root,
                                           std::string_view relative) {
  RETURN_IF_ERROR(ValidateRelativePath(relative));
  const std::string shown = "path '" + EscapeForMessage(relative) + "'";
  std::error_code ec;
  const std::filesystem::path canonical_root = std::filesystem::canonical(root, ec);
  if (ec) return Internal(shown + ": its root directory cannot be resolved");
  // A dangling symlink looks absent to weakly_canonical, which would then append the rest
  // lexically; writing through it later would land wherever it points. Refuse it.
  std::filesystem::path prefix = canonical_root;
  for (const auto& part : std::filesystem::path(std::string(relative))) {
    prefix /= part;
    const auto status = std::filesystem::symlink_status(prefix, ec);
    if (ec || status.type() == std::filesystem::file_type::not_found) break;
    if (std::filesystem::is_symlink(status) && !std::filesystem::exists(prefix, ec)) {
      return InvalidArgument(shown + " goes through a symlink that does not resolve");
    }
  }
  ec.clear();
  // weakly_canonical follows the symlinks of the longest existing prefix, so a symlink
  // anywhere in the existing part that points outside shows up here.
  const std::filesystem::path resolved =
      std::filesystem::weakly_canonical(canonical_root / std::string(relative), ec);
  if (ec) return InvalidArgument(shown + " cannot be resolved");
  if (!IsStrictlyInside(canonical_root, resolved.lexically_normal())) {
    return InvalidArgument(shown + " escapes its directory");
  }
  return resolved;
}

}  // namespace sluice::core

#include "frontend/http/content_encoding.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <climits>

namespace sluice::http {
namespace {

std::string Normalize(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s.substr(0, 64));
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A zlib inflate stream, ended on destruction.
class Inflater {
 public:
  explicit Inflater(int window_bits) { ok_ = inflateInit2(&zs_, window_bits) == Z_OK; }
  ~Inflater() {
    if (ok_) inflateEnd(&zs_);
  }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // Decodes all of `in`; at most `max_bytes` (< SIZE_MAX) are produced.
  Result<std::string> Run(std::string_view in, size_t max_bytes, const std::string& what) {
    if (!ok_) return Internal("cannot start a " + what + " decoder");
    if (in.size() > UINT_MAX) return InvalidArgument(what + " body is too large to decode");
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    std::string out;
    for (;;) {
      // One byte of room past the limit tells "exactly max_bytes" from "more".
      const size_t room = std::min<size_t>(64 * 1024, max_bytes - out.size() + 1);
      const size_t old_size = out.size();
      out.resize(old_size + room);
      zs_.next_out = reinterpret_cast<Bytef*>(out.data() + old_size);
      zs_.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      out.resize(old_size + room - zs_.avail_out);
      if (out.size() > max_bytes)
        return InvalidArgument(what + " body decodes to more than the limit of " +
                               std::to_string(max_bytes) + " bytes");
      if (rc == Z_STREAM_END) {
        if (zs_.avail_in != 0)
          return InvalidArgument(what + " body has " + std::to_string(zs_.avail_in) +
                                 " bytes after the end of its compressed data");
        return out;
      }
      if (rc == Z_OK) continue;
      if (rc == Z_BUF_ERROR && zs_.avail_in == 0)
        return InvalidArgument(what + " body is truncated");
      return InvalidArgument(what + " body is not valid " + what + " data" +
                             (zs_.msg ? std::string(": ") + zs_.msg : std::string()));
    }
  }

 private:
  z_stream zs_{};
  bool ok_ = false;
};

// RFC 1950 header: compression method 8 and a check value divisible by 31.
bool HasZlibHeader(std::string_view in) {
  if (in.size() < 2) return false;
  const auto cmf = static_cast<unsigned char>(in[0]), flg = static_cast<unsigned char>(in[1]);
  return (cmf & 0x0f) == 8 && (cmf * 256 + flg) % 31 == 0;
}

}  // namespace

Result<std::optional<std::string>> DecodeContentEncoding(std::string_view encoding,
                                                         std::string_view body, size_t max_bytes) {
  const std::string e = Normalize(encoding);
  if (e.empty() || e == "identity") return std::optional<std::string>();
  if (e == "gzip" || e == "x-gzip") {
    ASSIGN_OR_RETURN(std::string out, Inflater(16 + MAX_WBITS).Run(body, max_bytes, "gzip"));
    return std::optional<std::string>(std::move(out));
  }
  if (e == "deflate") {
    const int bits = HasZlibHeader(body) ? MAX_WBITS : -MAX_WBITS;
    ASSIGN_OR_RETURN(std::string out, Inflater(bits).Run(body, max_bytes, "deflate"));
    return std::optional<std::string>(std::move(out));
  }
  return Unsupported("unsupported Content-Encoding '" + e + "' (supported: gzip, deflate)");
}

}  // namespace sluice::http

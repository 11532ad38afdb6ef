#include "ipc/wire_buffer.h"

#include <cstring>

namespace sluice::ipc {

void WireWriter::F64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  U64(bits);
}

void WireWriter::Str(std::string_view s) {
  U32(static_cast<uint32_t>(s.size()));
  out_.append(s);
}

void WireWriter::Blob(std::string_view s) {
  U64(s.size());
  out_.append(s);
}

Result<uint64_t> WireReader::Fixed(std::string_view field, int bytes) {
  if (remaining() < static_cast<size_t>(bytes))
    return InvalidArgument("truncated payload reading " + std::string(field) + " (" +
                           std::to_string(bytes) + " bytes needed, " +
                           std::to_string(remaining()) + " left)");
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= uint64_t(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
  pos_ += bytes;
  return v;
}

Result<uint8_t> WireReader::U8(std::string_view field) {
  ASSIGN_OR_RETURN(uint64_t v, Fixed(field, 1));
  return static_cast<uint8_t>(v);
}
Result<uint16_t> WireReader::U16(std::string_view field) {
  ASSIGN_OR_RETURN(uint64_t v, Fixed(field, 2));
  return static_cast<uint16_t>(v);
}
Result<uint32_t> WireReader::U32(std::string_view field) {
  ASSIGN_OR_RETURN(uint64_t v, Fixed(field, 4));
  return static_cast<uint32_t>(v);
}
Result<uint64_t> WireReader::U64(std::string_view field) { return Fixed(field, 8); }
Result<int64_t> WireReader::I64(std::string_view field) {
  ASSIGN_OR_RETURN(uint64_t v, Fixed(field, 8));
  return static_cast<int64_t>(v);
}
Result<double> WireReader::F64(std::string_view field) {
  ASSIGN_OR_RETURN(uint64_t bits, Fixed(field, 8));
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
Result<bool> WireReader::Bool(std::string_view field) {
  ASSIGN_OR_RETURN(uint8_t v, U8(field));
  if (v > 1) return InvalidArgument(std::string(field) + ": boolean byte " + std::to_string(v));
  return v == 1;
}

Result<std::string> WireReader::Str(std::string_view field, uint32_t max_len) {
  ASSIGN_OR_RETURN(uint32_t n, U32(field));
  return TakeBytes(field, n, max_len);
}

Result<std::string> WireReader::Blob(std::string_view field, uint64_t max_len) {
  ASSIGN_OR_RETURN(uint64_t n, U64(field));
  return TakeBytes(field, n, max_len);
}

Result<std::string> WireReader::TakeBytes(std::string_view field, uint64_t n, uint64_t max_len) {
  if (n > max_len)
    return InvalidArgument(std::string(field) + ": length " + std::to_string(n) +
                           " exceeds the limit of " + std::to_string(max_len));
  if (n > remaining())
    return InvalidArgument(std::string(field) + ": length " + std::to_string(n) +
                           " runs past the end of the message (" + std::to_string(remaining()) +
                           " bytes left)");
  std::string s(data_.substr(pos_, n));
  pos_ += n;
  return s;
}

Result<uint32_t> WireReader::Count(std::string_view field, uint32_t max_count) {
  ASSIGN_OR_RETURN(uint32_t n, U32(field));
  if (n > max_count)
    return InvalidArgument(std::string(field) + ": count " + std::to_string(n) +
                           " exceeds the limit of " + std::to_string(max_count));
  return n;
}

Status WireReader::ExpectEnd(std::string_view what) const {
  if (remaining() != 0)
    return InvalidArgument(std::string(what) + ": " + std::to_string(remaining()) +
                           " unexpected trailing bytes (length field disagrees with content)");
  return Status::Ok();
}

}  // namespace sluice::ipc

#pragma once
// Little-endian binary writer and bounded reader for IPC payloads. The reader never reads
// past its buffer: every length is checked against the bytes remaining and a caller cap
// before use, and every failure is a Status naming the field.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace sluice::ipc {

class WireWriter {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) { Fixed(v, 2); }
  void U32(uint32_t v) { Fixed(v, 4); }
  void U64(uint64_t v) { Fixed(v, 8); }
  void I64(int64_t v) { Fixed(static_cast<uint64_t>(v), 8); }
  void F64(double v);
  // u32 length + bytes. The caller keeps `s` under the reader's cap for that field.
  void Str(std::string_view s);
  // u64 length + bytes (tensor data).
  void Blob(std::string_view s);

  std::string& buffer() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  void Fixed(uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  Result<uint8_t> U8(std::string_view field);
  Result<uint16_t> U16(std::string_view field);
  Result<uint32_t> U32(std::string_view field);
  Result<uint64_t> U64(std::string_view field);
  Result<int64_t> I64(std::string_view field);
  Result<double> F64(std::string_view field);
  Result<bool> Bool(std::string_view field);
  // u32 length (at most `max_len`) + bytes.
  Result<std::string> Str(std::string_view field, uint32_t max_len);
  // u64 length (at most `max_len`) + bytes.
  Result<std::string> Blob(std::string_view field, uint64_t max_len);
  // A count read as u32 and checked against `max_count`.
  Result<uint32_t> Count(std::string_view field, uint32_t max_count);

  size_t remaining() const { return data_.size() - pos_; }
  // Error unless every byte was consumed (a lying length leaves bytes behind).
  Status ExpectEnd(std::string_view what) const;

 private:
  Result<uint64_t> Fixed(std::string_view field, int bytes);
  // The next `n` bytes, refusing n past `max_len` or past the end of the message.
  Result<std::string> TakeBytes(std::string_view field, uint64_t n, uint64_t max_len);
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace sluice::ipc

#include "common/tensor.h"

#include <cstring>

namespace sluice {

Result<int64_t> ElementCount(const Shape& shape, int64_t max_elements) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("shape " + ShapeToString(shape) + " has a negative dimension");
    if (d != 0 && count > max_elements / d)
      return InvalidArgument("shape " + ShapeToString(shape) + " has more than " +
                             std::to_string(max_elements) + " elements");
    count *= d;
  }
  return count;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

void AppendBytesElement(std::string& out, std::string_view element) {
  uint32_t n = static_cast<uint32_t>(element.size());
  char len[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                 static_cast<char>((n >> 16) & 0xff), static_cast<char>((n >> 24) & 0xff)};
  out.append(len, 4);
  out.append(element);
}

Result<std::vector<std::string_view>> SplitBytesElements(std::string_view data) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < data.size()) {
    if (data.size() - pos < 4)
      return InvalidArgument("BYTES element " + std::to_string(out.size()) +
                             ": truncated 4-byte length prefix");
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + pos);
    uint32_t n = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    pos += 4;
    if (n > data.size() - pos)
      return InvalidArgument("BYTES element " + std::to_string(out.size()) + ": length " +
                             std::to_string(n) + " runs past the end of the buffer");
    out.emplace_back(data.data() + pos, n);
    pos += n;
  }
  return out;
}

Status ValidateTensorData(const Tensor& t) {
  auto count = ElementCount(t.shape);
  if (!count.ok()) return count.status().WithPrefix("tensor '" + t.name + "'");
  if (t.datatype == DataType::kInvalid) return InvalidArgument("tensor '" + t.name + "' has no datatype");
  if (t.datatype == DataType::kBytes) {
    auto elems = SplitBytesElements(t.data);
    if (!elems.ok()) return elems.status().WithPrefix("tensor '" + t.name + "'");
    if (static_cast<int64_t>(elems->size()) != *count)
      return InvalidArgument("tensor '" + t.name + "': shape " + ShapeToString(t.shape) + " needs " +
                             std::to_string(*count) + " BYTES elements, got " +
                             std::to_string(elems->size()));
    return Status::Ok();
  }
  const uint64_t expected = static_cast<uint64_t>(*count) * DataTypeSize(t.datatype);
  if (*count != 0 && expected / static_cast<uint64_t>(*count) != DataTypeSize(t.datatype))
    return InvalidArgument("tensor '" + t.name + "': byte size overflows");
  if (t.data.size() != expected)
    return InvalidArgument("tensor '" + t.name + "': shape " + ShapeToString(t.shape) + " of " +
                           std::string(DataTypeName(t.datatype)) + " needs " +
                           std::to_string(expected) + " bytes, got " + std::to_string(t.data.size()));
  return Status::Ok();
}

const Tensor* FindTensor(const std::vector<Tensor>& tensors, std::string_view name) {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace sluice

#pragma once
// A named tensor with its bytes. Shared by frontends, core, IPC and backends.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/data_type.h"
#include "common/status.h"

namespace sluice {

using Shape = std::vector<int64_t>;

// Owns its data. For fixed-size types `data` holds element_count * DataTypeSize bytes,
// row-major, little-endian. For BYTES each element is a 4-byte little-endian length
// followed by that many bytes (Triton's serialization), elements back to back.
struct Tensor {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape shape;
  std::string data;
};

// Element count of `shape`, refusing negative dims and products past `max_elements`
// (overflow-safe: checks before each multiply). The error names the shape.
Result<int64_t> ElementCount(const Shape& shape, int64_t max_elements = INT64_MAX);

// "[2,3]"
std::string ShapeToString(const Shape& shape);

// Checks that `t.data` is consistent with its datatype and shape: the exact byte size for
// fixed-size types; for BYTES, that the length prefixes walk the buffer exactly, with no
// element past its end. The error names the tensor.
Status ValidateTensorData(const Tensor& t);

// BYTES helpers (Triton's 4-byte length-prefixed serialization).
void AppendBytesElement(std::string& out, std::string_view element);
// Splits serialized BYTES data into its elements; error if a length prefix points past the
// buffer or trailing bytes remain.
Result<std::vector<std::string_view>> SplitBytesElements(std::string_view data);

// The tensor named `name` in `tensors`, or null.
const Tensor* FindTensor(const std::vector<Tensor>& tensors, std::string_view name);

}  // namespace sluice

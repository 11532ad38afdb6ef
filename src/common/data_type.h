#pragma once
// Tensor element types, with KServe v2 names ("INT32") and Triton config names ("TYPE_INT32").

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

enum class DataType : uint8_t {
  kInvalid = 0,
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kFp32,
  kFp64,
  kBf16,
  kBytes,  // variable length; serialized as 4-byte little-endian length + bytes per element
};

// "INT32", "BYTES", ...; "INVALID" for kInvalid.
std::string_view DataTypeName(DataType t);
// Parses a KServe v2 name ("FP32"); nullopt when unknown.
std::optional<DataType> ParseDataType(std::string_view name);
// Parses a Triton model-config name ("TYPE_FP32", "TYPE_STRING"); nullopt when unknown.
std::optional<DataType> ParseConfigDataType(std::string_view name);
// "TYPE_FP32", "TYPE_STRING" for kBytes.
std::string_view ConfigDataTypeName(DataType t);
// Bytes per element; 0 for kBytes and kInvalid (variable or none).
size_t DataTypeSize(DataType t);

}  // namespace sluice

#include "backends/llm/model/safetensors.h"

#include <algorithm>
#include <limits>

#include "backends/llm/model/json_file.h"

namespace sluice::llm {
namespace {

Result<StDType> ParseDType(const std::string& s) {
  if (s == "F32") return StDType::kF32;
  if (s == "BF16") return StDType::kBF16;
  if (s == "F16") return StDType::kF16;
  if (s == "I32") return StDType::kI32;
  if (s == "I8") return StDType::kI8;
  if (s == "U8") return StDType::kU8;
  return InvalidArgument("unsupported dtype '" + s.substr(0, 32) + "'");
}

std::string Quote(std::string_view name) {
  // Appended, not "'" + std::string(...) + "'": GCC 12 at -O3 reports a false -Wrestrict
  // overlap in operator+(const char*, std::string&&) (GCC bug 105651).
  std::string out = "'";
  out += name.substr(0, 256);
  out += '\'';
  return out;
}

}  // namespace

size_t StDTypeSize(StDType dtype) {
  switch (dtype) {
    case StDType::kF32:
      return 4;
    case StDType::kBF16:
      return 2;
    case StDType::kF16:
      return 2;
    case StDType::kI32:
      return 4;
    case StDType::kI8:
      return 1;
    case StDType::kU8:
      return 1;
  }
  return 0;
}

std::string_view StDTypeName(StDType dtype) {
  switch (dtype) {
    case StDType::kF32:
      return "F32";
    case StDType::kBF16:
      return "BF16";
    case StDType::kF16:
      return "F16";
    case StDType::kI32:
      return "I32";
    case StDType::kI8:
      return "I8";
    case StDType::kU8:
      return "U8";
  }
  return "?";
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(auto mapping, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(std::move(mapping)));
  Status st = file->Parse();
  if (!st.ok()) return st.WithPrefix(file->name());
  return file;
}

const SafeTensor* SafetensorsFile::Find(std::string_view tensor_name) const {
  auto it = index_.find(std::string(tensor_name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// One tensor's header entry (dtype, shape, data_offsets), checked against the data section:
// `data_size` bytes at `data`.
Result<SafeTensor> ParseTensorEntry(const std::string& key, const nlohmann::json& value,
                                    const std::byte* data, uint64_t data_size) {
  const std::string what = "tensor " + Quote(key);
  if (key.empty() || key.size() > SafetensorsFile::kMaxNameBytes) {
    return InvalidArgument(what + ": name length " + std::to_string(key.size()) + " outside [1, " +
                           std::to_string(SafetensorsFile::kMaxNameBytes) + "]");
  }
  if (!value.is_object()) return InvalidArgument(what + ": entry is not an object");
  auto dtype_it = value.find("dtype");
  auto shape_it = value.find("shape");
  auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    return InvalidArgument(what + ": missing or non-string 'dtype'");
  }
  SafeTensor t;
  t.name = key;
  auto dtype = ParseDType(dtype_it->get<std::string>());
  if (!dtype.ok()) return dtype.status().WithPrefix(what);
  t.dtype = *dtype;
  if (shape_it == value.end() || !shape_it->is_array()) {
    return InvalidArgument(what + ": missing or non-array 'shape'");
  }
  if (shape_it->size() > SafetensorsFile::kMaxRank) {
    return InvalidArgument(what + ": rank " + std::to_string(shape_it->size()) +
                           " exceeds the limit of " + std::to_string(SafetensorsFile::kMaxRank));
  }
  uint64_t elements = 1;
  for (const auto& dim : *shape_it) {
    if (!dim.is_number_unsigned()) {
      return InvalidArgument(what + ": shape holds a value that is not a non-negative integer");
    }
    const uint64_t d = dim.get<uint64_t>();
    if (d > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
        (d != 0 && elements > std::numeric_limits<uint64_t>::max() / d)) {
      return InvalidArgument(what + ": shape's element count overflows");
    }
    elements *= d;
    t.shape.push_back(static_cast<int64_t>(d));
  }
  const uint64_t size = StDTypeSize(t.dtype);
  if (elements > std::numeric_limits<uint64_t>::max() / size) {
    return InvalidArgument(what + ": shape's byte size overflows");
  }
  const uint64_t expected = elements * size;
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
      !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
    return InvalidArgument(what + ": 'data_offsets' must be two non-negative integers");
  }
  const uint64_t begin = (*offsets_it)[0].get<uint64_t>();
  const uint64_t end = (*offsets_it)[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    return InvalidArgument(what + ": data_offsets [" + std::to_string(begin) + ", " +
                           std::to_string(end) + ") outside the data section (" +
                           std::to_string(data_size) + " bytes)");
  }
  if (end - begin != expected) {
    return InvalidArgument(what + ": data_offsets span " + std::to_string(end - begin) +
                           " bytes but shape x " + std::string(StDTypeName(t.dtype)) + " needs " +
                           std::to_string(expected));
  }
  t.elements = elements;
  t.data = data + begin;
  t.bytes = static_cast<size_t>(expected);
  return t;
}

// No two tensors may share bytes: sort by offset and compare neighbours.
Status CheckNoOverlap(const std::vector<SafeTensor>& tensors) {
  std::vector<const SafeTensor*> by_offset;
  by_offset.reserve(tensors.size());
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafeTensor* a, const SafeTensor* b) { return a->data < b->data; });
  const SafeTensor* furthest = nullptr;  // the non-empty tensor reaching furthest so far
  for (const SafeTensor* cur : by_offset) {
    if (cur->bytes == 0) continue;
    if (furthest != nullptr && cur->data < furthest->data + furthest->bytes) {
      return InvalidArgument("tensor " + Quote(cur->name) + ": data overlaps tensor " +
                             Quote(furthest->name));
    }
    furthest = cur;
  }
  return Status::Ok();
}

}  // namespace

Status SafetensorsFile::Parse() {
  const size_t file_size = mapping_->size();
  if (file_size < 8) {
    return InvalidArgument("truncated: " + std::to_string(file_size) +
                           " bytes, too short for the header length");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<uint8_t>(mapping_->data()[i]);
  }
  if (header_len > kMaxHeaderBytes) {
    return InvalidArgument("header length " + std::to_string(header_len) +
                           " exceeds the limit of " + std::to_string(kMaxHeaderBytes));
  }
  if (header_len > file_size - 8) {
    return InvalidArgument("truncated: header length " + std::to_string(header_len) +
                           " runs past the end of the file (" + std::to_string(file_size) +
                           " bytes)");
  }
  const std::string_view header(reinterpret_cast<const char*>(mapping_->data()) + 8, header_len);
  ASSIGN_OR_RETURN(nlohmann::json root, ParseJsonBounded(header, "header"));
  if (!root.is_object()) return InvalidArgument("header is not a JSON object");
  if (root.size() > kMaxTensors + 1) {
    return InvalidArgument("header lists " + std::to_string(root.size()) +
                           " tensors, more than the limit of " + std::to_string(kMaxTensors));
  }

  const std::byte* data = mapping_->data() + 8 + header_len;
  const uint64_t data_size = file_size - 8 - header_len;
  tensors_.reserve(root.size());
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return InvalidArgument("__metadata__ is not an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          return InvalidArgument("__metadata__ " + Quote(mk) + " is not a string");
        metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    ASSIGN_OR_RETURN(SafeTensor t, ParseTensorEntry(key, value, data, data_size));
    index_.emplace(key, tensors_.size());
    tensors_.push_back(std::move(t));
  }
  return CheckNoOverlap(tensors_);
}

}  // namespace sluice::llm

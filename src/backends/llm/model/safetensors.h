#pragma once
// A bounded reader of one .safetensors file, memory-mapped. Open validates everything
// before any tensor is used: the header length (u64 LE, capped, inside the file), the JSON
// header (size and depth capped), every tensor's dtype (known), shape (rank capped,
// overflow-safe element count), and data_offsets (inside the data section, exactly
// shape x dtype bytes, no two tensors overlapping). `__metadata__` (string -> string) is
// kept. A truncated or lying file is InvalidArgument naming the file (basename) and the
// tensor; nothing is read out of bounds.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/llm/model/mapped_file.h"
#include "common/status.h"

namespace sluice::llm {

enum class StDType { kF32, kBF16, kF16, kI32, kI8, kU8 };

size_t StDTypeSize(StDType dtype);
std::string_view StDTypeName(StDType dtype);

struct SafeTensor {
  std::string name;
  StDType dtype = StDType::kF32;
  std::vector<int64_t> shape;
  uint64_t elements = 0;
  const std::byte* data = nullptr;  // into the mapping; valid while the file is alive
  size_t bytes = 0;
};

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
  static constexpr size_t kMaxRank = 8;
  static constexpr size_t kMaxTensors = 1u << 20;
  static constexpr size_t kMaxNameBytes = 4096;

  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::filesystem::path& path);

  const std::string& name() const { return mapping_->name(); }
  const std::vector<SafeTensor>& tensors() const { return tensors_; }
  const SafeTensor* Find(std::string_view tensor_name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The mapping the tensors point into; weights loaded without a copy hold it.
  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }

 private:
  explicit SafetensorsFile(std::shared_ptr<MappedFile> mapping) : mapping_(std::move(mapping)) {}
  Status Parse();

  std::shared_ptr<MappedFile> mapping_;
  std::vector<SafeTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;  // name -> tensors_ index
  std::map<std::string, std::string> metadata_;
};

}  // namespace sluice::llm

#pragma once
// A read-only memory mapping of a whole file (RAII: unmapped when destroyed). Held through
// shared_ptr because every weight buffer that points into it keeps it alive.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"

namespace sluice::llm {

class MappedFile {
 public:
  // Errors name the file by its basename only.
  static Result<std::shared_ptr<MappedFile>> Open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }  // basename, for messages

 private:
  MappedFile(std::string name, const std::byte* data, size_t size)
      : name_(std::move(name)), data_(data), size_(size) {}

  std::string name_;
  const std::byte* data_;  // nullptr for an empty file
  size_t size_;
};

}  // namespace sluice::llm

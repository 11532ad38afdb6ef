#pragma once
// The tensors of a model folder: `model.safetensors.index.json` (its weight_map names the
// shard of each tensor; every shard is opened and validated) or a single
// `model.safetensors`. Shard names must be plain file names in the folder.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "backends/llm/model/safetensors.h"
#include "common/status.h"

namespace sluice::llm {

class WeightStore {
 public:
  static constexpr size_t kMaxIndexBytes = 64u << 20;
  static constexpr size_t kMaxShards = 4096;

  static Result<std::unique_ptr<WeightStore>> Open(const std::filesystem::path& folder);

  // The tensor, or nullptr. `file` (optional) receives the file holding it.
  const SafeTensor* Find(std::string_view name, const SafetensorsFile** file = nullptr) const;
  size_t num_tensors() const { return where_.size(); }

 private:
  WeightStore() = default;

  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, std::pair<const SafetensorsFile*, const SafeTensor*>> where_;
};

}  // namespace sluice::llm

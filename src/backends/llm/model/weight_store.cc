#include "backends/llm/model/weight_store.h"

#include <map>
#include <system_error>

#include "backends/llm/model/json_file.h"

namespace sluice::llm {
namespace {

bool IsPlainFileName(const std::string& s) {
  return !s.empty() && s.size() <= 255 && s != "." && s != ".." &&
         s.find('/') == std::string::npos && s.find('\\') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

}  // namespace

Result<std::unique_ptr<WeightStore>> WeightStore::Open(const std::filesystem::path& folder) {
  std::unique_ptr<WeightStore> store(new WeightStore());
  const auto index_path = folder / "model.safetensors.index.json";
  std::error_code ec;
  if (std::filesystem::exists(index_path, ec)) {
    ASSIGN_OR_RETURN(nlohmann::json index, ReadJsonFile(index_path, kMaxIndexBytes));
    const std::string what = "model.safetensors.index.json";
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return InvalidArgument(what + ": missing object 'weight_map'");
    }
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [tensor, shard] : index["weight_map"].items()) {
      if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
        return InvalidArgument(what + ": tensor '" + tensor.substr(0, 256) +
                               "' maps to an invalid shard name");
      }
      const std::string shard_name = shard.get<std::string>();
      auto it = shards.find(shard_name);
      if (it == shards.end()) {
        if (shards.size() >= kMaxShards) {
          return InvalidArgument(what + ": more than " + std::to_string(kMaxShards) + " shards");
        }
        ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(folder / shard_name));
        it = shards.emplace(shard_name, file.get()).first;
        store->files_.push_back(std::move(file));
      }
      const SafeTensor* t = it->second->Find(tensor);
      if (t == nullptr) {
        return InvalidArgument(what + ": tensor '" + tensor.substr(0, 256) + "' is not in " +
                               shard_name);
      }
      store->where_[tensor] = {it->second, t};
    }
    return store;
  }
  const auto single = folder / "model.safetensors";
  if (!std::filesystem::exists(single, ec)) {
    return NotFound("model folder has neither model.safetensors nor model.safetensors.index.json");
  }
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(single));
  for (const auto& t : file->tensors()) store->where_[t.name] = {file.get(), &t};
  store->files_.push_back(std::move(file));
  return store;
}

const SafeTensor* WeightStore::Find(std::string_view name, const SafetensorsFile** file) const {
  auto it = where_.find(std::string(name));
  if (it == where_.end()) return nullptr;
  if (file != nullptr) *file = it->second.first;
  return it->second.second;
}

}  // namespace sluice::llm

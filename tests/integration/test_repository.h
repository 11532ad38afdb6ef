#pragma once
// Builds model repositories for integration tests in a temporary directory.

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "integration/server_process.h"

namespace sluice::testing {

inline std::string IdentityConfig(const std::string& name, const std::string& extra = "") {
  return "name: \"" + name + "\"\nbackend: \"identity\"\nmax_batch_size: 0\n"
         "input [ { name: \"INPUT0\" data_type: TYPE_INT32 dims: [ -1 ] },\n"
         "        { name: \"TEXT\" data_type: TYPE_STRING dims: [ -1 ] optional: true } ]\n"
         "output [ { name: \"OUTPUT0\" data_type: TYPE_INT32 dims: [ -1 ] },\n"
         "         { name: \"TEXT\" data_type: TYPE_STRING dims: [ -1 ] } ]\n"
         "instance_group [ { count: 1 kind: KIND_CPU } ]\n" + extra;
}

inline std::string RepeatConfig(const std::string& name, const std::string& extra = "") {
  return "name: \"" + name + "\"\nbackend: \"repeat\"\nmax_batch_size: 0\n"
         "model_transaction_policy { decoupled: true }\n"
         "input [ { name: \"IN\" data_type: TYPE_INT32 dims: [ -1 ] },\n"
         "        { name: \"DELAY\" data_type: TYPE_UINT32 dims: [ -1 ] },\n"
         "        { name: \"WAIT\" data_type: TYPE_UINT32 dims: [ 1 ] } ]\n"
         "output [ { name: \"OUT\" data_type: TYPE_INT32 dims: [ 1 ] },\n"
         "         { name: \"IDX\" data_type: TYPE_UINT32 dims: [ 1 ] } ]\n"
         "instance_group [ { count: 1 kind: KIND_CPU } ]\n" + extra;
}

inline std::string Param(const std::string& key, const std::string& value) {
  return "parameters { key: \"" + key + "\" value { string_value: \"" + value + "\" } }\n";
}

class TestRepository {
 public:
  const std::string& path() const { return dir_.path(); }
  void Add(const std::string& name, const std::string& config, std::vector<int> versions = {1}) {
    std::filesystem::create_directories(path() + "/" + name);
    std::ofstream(path() + "/" + name + "/config.pbtxt") << config;
    for (int v : versions) std::filesystem::create_directories(path() + "/" + name + "/" + std::to_string(v));
  }
  void Write(const std::string& rel, const std::string& content) { std::ofstream(path() + "/" + rel) << content; }
  void Remove(const std::string& name) { std::filesystem::remove_all(path() + "/" + name); }

 private:
  TempDir dir_;
};

}  // namespace sluice::testing

#pragma once
// Test helper shared by the model tests (CPU and CUDA): the fixture models of
// tests/fixtures/models and their transformers references (scripts/make_test_models.py,
// scripts/make_gpu_test_models.py).

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

namespace sluice::llm::testing {

inline const std::filesystem::path kFixtures =
    std::filesystem::path(SLUICE_SOURCE_DIR) / "tests/fixtures/models";

// A model folder and the reference JSON it is checked against.
struct ModelCase {
  const char* folder;
  const char* reference;
};

inline std::ostream& operator<<(std::ostream& os, const ModelCase& c) { return os << c.folder; }

inline nlohmann::json LoadReference(const char* name) {
  std::ifstream in(kFixtures / name);
  return nlohmann::json::parse(in);
}

}  // namespace sluice::llm::testing

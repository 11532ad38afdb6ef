#pragma once
// Invariant checks inside fuzz targets: a violated invariant is a crash that libFuzzer
// records (with its input) like any other. Sluice's own code never aborts on untrusted
// bytes; only the targets do, when Sluice returned something inconsistent.

#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                        \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: invariant failed: %s (%s)\n", __FILE__, __LINE__, \
                   #cond, std::string(what).c_str());                                 \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace sluice::fuzz {

// Input bytes as text.
inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace sluice::fuzz

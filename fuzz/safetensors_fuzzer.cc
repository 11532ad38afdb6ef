// .safetensors files (backends/llm/model/safetensors.h): the header length, the JSON
// header, dtypes, shapes and data offsets of every tensor. The input is written to a memfd
// and opened by its /proc path, through the same mapping code as a model folder's files.
// Invariants: every tensor's bytes lie inside the file, past the header, and equal its
// element count times its dtype size; tensors do not overlap.

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "backends/llm/model/safetensors.h"
#include "fuzz_check.h"

namespace {

// One memfd for the whole run, rewritten per input.
int InputFd() {
  static const int fd = memfd_create("fuzz.safetensors", 0);
  if (fd < 0) std::abort();
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const int fd = InputFd();
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) std::abort();
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  auto file = llm::SafetensorsFile::Open(path);
  if (!file.ok()) {
    FUZZ_CHECK(!file.status().message().empty(), "an error without a message");
    return 0;
  }
  const std::byte* begin = (*file)->mapping()->data();
  const std::byte* end = begin + (*file)->mapping()->size();
  std::vector<std::pair<const std::byte*, size_t>> ranges;
  for (const llm::SafeTensor& t : (*file)->tensors()) {
    FUZZ_CHECK(t.bytes == t.elements * llm::StDTypeSize(t.dtype), t.name);
    FUZZ_CHECK((*file)->Find(t.name) == &t, "Find does not return " + t.name);
    if (t.bytes == 0) continue;
    FUZZ_CHECK(t.data >= begin + 8 && t.data + t.bytes <= end, "tensor outside the file: " + t.name);
    ranges.emplace_back(t.data, t.bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    FUZZ_CHECK(ranges[i - 1].first + ranges[i - 1].second <= ranges[i].first, "overlapping tensors");
  return 0;
}

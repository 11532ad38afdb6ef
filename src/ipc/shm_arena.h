#pragma once
// Shared memory for tensor data between the server and one stub: one anonymous memfd
// region (never a /dev/shm name, so a kill -9 of either side leaves nothing behind), split
// into two equal areas, one per direction. The sender of each direction owns that area's
// allocator (ShmAllocator); the receiver copies the bytes out and sends ShmRelease.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace sluice::ipc {

enum class Direction { kToStub, kToServer };

// One block of an area: offset from the start of that direction's area, and size.
struct ShmBlock {
  uint64_t offset = 0;
  uint64_t size = 0;
  bool operator==(const ShmBlock&) const = default;
};

// The mapped memfd region. Owns the fd and the mapping (RAII).
class ShmRegion {
 public:
  // Creates a close-on-exec memfd of 2 * `bytes_per_direction` and maps it.
  static Result<std::unique_ptr<ShmRegion>> Create(uint64_t bytes_per_direction);
  // Maps an inherited memfd (takes ownership of `fd`). Its size must be even and non-zero.
  static Result<std::unique_ptr<ShmRegion>> Attach(int fd);
  ~ShmRegion();
  ShmRegion(const ShmRegion&) = delete;
  ShmRegion& operator=(const ShmRegion&) = delete;

  int fd() const { return fd_; }
  std::span<char> Area(Direction d) const;

 private:
  ShmRegion(int fd, char* base, uint64_t size) : fd_(fd), base_(base), size_(size) {}
  int fd_;
  char* base_;
  uint64_t size_;
};

// First-fit allocator over one area, used by that area's sender. Thread-safe.
class ShmAllocator {
 public:
  explicit ShmAllocator(uint64_t area_size);
  // Offset of a free block of `size` bytes (rounded up to 64), or nullopt when full.
  std::optional<uint64_t> Allocate(uint64_t size);
  // Returns a block named by a ShmRelease. InvalidArgument when it is not a live block
  // (the peer released something it was never given).
  Status Free(ShmBlock block);
  uint64_t used_bytes() const;

 private:
  static uint64_t RoundUp(uint64_t n) { return (n + 63) & ~uint64_t{63}; }
  mutable Mutex mu_;
  uint64_t area_size_;  // constant after construction
  std::map<uint64_t, uint64_t> free_ SLUICE_GUARDED_BY(mu_);  // offset -> size, coalesced
  std::map<uint64_t, uint64_t> live_ SLUICE_GUARDED_BY(mu_);  // offset -> rounded size
  uint64_t used_ SLUICE_GUARDED_BY(mu_) = 0;
};

}  // namespace sluice::ipc

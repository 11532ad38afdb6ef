#include "ipc/shm_arena.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace sluice::ipc {

Result<std::unique_ptr<ShmRegion>> ShmRegion::Create(uint64_t bytes_per_direction) {
  if (bytes_per_direction == 0 || bytes_per_direction > (uint64_t{1} << 40))
    return InvalidArgument("shared memory area size " + std::to_string(bytes_per_direction) +
                           " is out of range");
  int fd = memfd_create("sluice-ipc", MFD_CLOEXEC);
  if (fd < 0) return Internal(std::string("memfd_create failed: ") + std::strerror(errno));
  const uint64_t size = 2 * bytes_per_direction;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    int e = errno;
    close(fd);
    return Internal(std::string("cannot size the shared memory region: ") + std::strerror(e));
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int e = errno;
    close(fd);
    return Internal(std::string("cannot map the shared memory region: ") + std::strerror(e));
  }
  return std::unique_ptr<ShmRegion>(new ShmRegion(fd, static_cast<char*>(base), size));
}

Result<std::unique_ptr<ShmRegion>> ShmRegion::Attach(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return Internal(std::string("cannot stat the shared memory region: ") + std::strerror(e));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0 || size % 2 != 0) {
    close(fd);
    return InvalidArgument("shared memory region has an invalid size " + std::to_string(size));
  }
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int e = errno;
    close(fd);
    return Internal(std::string("cannot map the shared memory region: ") + std::strerror(e));
  }
  return std::unique_ptr<ShmRegion>(new ShmRegion(fd, static_cast<char*>(base), size));
}

ShmRegion::~ShmRegion() {
  munmap(base_, size_);
  close(fd_);
}

std::span<char> ShmRegion::Area(Direction d) const {
  const uint64_t half = size_ / 2;
  switch (d) {
    case Direction::kToStub:
      return {base_, half};
    case Direction::kToServer:
      return {base_ + half, half};
  }
  return {};
}

ShmAllocator::ShmAllocator(uint64_t area_size) : area_size_(area_size & ~uint64_t{63}) {
  if (area_size_ > 0) free_[0] = area_size_;
}

std::optional<uint64_t> ShmAllocator::Allocate(uint64_t size) {
  if (size == 0 || size > area_size_) return std::nullopt;
  const uint64_t need = RoundUp(size);
  MutexLock lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    if (it->second < need) continue;
    const uint64_t offset = it->first;
    const uint64_t rest = it->second - need;
    free_.erase(it);
    if (rest > 0) free_[offset + need] = rest;
    live_[offset] = need;
    used_ += need;
    return offset;
  }
  return std::nullopt;
}

Status ShmAllocator::Free(ShmBlock block) {
  MutexLock lock(mu_);
  auto it = live_.find(block.offset);
  if (it == live_.end() || block.size == 0 || RoundUp(block.size) != it->second)
    return InvalidArgument("release of shared memory block at offset " +
                           std::to_string(block.offset) + " size " + std::to_string(block.size) +
                           " that was not handed out");
  uint64_t offset = it->first;
  uint64_t size = it->second;
  live_.erase(it);
  used_ -= size;
  // Coalesce with the neighbours.
  auto next = free_.lower_bound(offset);
  if (next != free_.end() && offset + size == next->first) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == offset) {
      prev->second += size;
      return Status::Ok();
    }
  }
  free_[offset] = size;
  return Status::Ok();
}

uint64_t ShmAllocator::used_bytes() const {
  MutexLock lock(mu_);
  return used_;
}

}  // namespace sluice::ipc

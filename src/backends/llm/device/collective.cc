#include "backends/llm/device/collective.h"

#include <string>

namespace sluice::llm {

class LocalCollectiveGroup::Rank final : public Collective {
 public:
  Rank(LocalCollectiveGroup& group, int32_t rank) : group_(group), rank_(rank) {}
  int32_t rank() const override { return rank_; }
  int32_t size() const override { return group_.size(); }

  Status AllReduceSum(Device& device, Buffer& buf, size_t elements) override {
    // Every rank passes both barriers whatever happens, so that one rank's bad argument
    // fails that rank's step instead of leaving the others waiting.
    Status st = Status::Ok();
    if (buf.dtype() != DType::kF32) {
      st = Unsupported("LocalCollectiveGroup sums fp32 buffers only");
    } else if (elements > buf.elements()) {
      st = InvalidArgument("all-reduce of " + std::to_string(elements) + " elements over a " +
                           std::to_string(buf.elements()) + "-element buffer");
    }
    std::vector<float>& mine = group_.values_[static_cast<size_t>(rank_)];
    mine.assign(st.ok() ? elements : 0, 0.f);
    if (st.ok()) st = device.Download(buf, mine.data(), elements * sizeof(float));
    group_.barrier_.arrive_and_wait();  // every rank's values are in place
    std::vector<float> sum;
    if (st.ok()) {
      sum.assign(elements, 0.f);
      for (const std::vector<float>& v : group_.values_) {
        if (v.size() != elements) {
          st = InvalidArgument("all-reduce: the ranks passed different sizes");
          break;
        }
        for (size_t i = 0; i < elements; ++i) sum[i] += v[i];
      }
    }
    group_.barrier_.arrive_and_wait();  // every rank has read them
    if (!st.ok()) return st;
    return device.Upload(buf, sum.data(), elements * sizeof(float));
  }

 private:
  LocalCollectiveGroup& group_;
  int32_t rank_;
};

LocalCollectiveGroup::LocalCollectiveGroup(int32_t size)
    : barrier_(size), values_(static_cast<size_t>(size)) {
  for (int32_t r = 0; r < size; ++r) ranks_.push_back(std::make_unique<Rank>(*this, r));
}

LocalCollectiveGroup::~LocalCollectiveGroup() = default;

Collective& LocalCollectiveGroup::rank(int32_t r) {
  return *ranks_.at(static_cast<size_t>(r));
}

}  // namespace sluice::llm

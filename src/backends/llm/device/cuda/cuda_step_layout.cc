#include "backends/llm/device/cuda/cuda_step_layout.h"

#include <algorithm>

namespace sluice::llm::cuda {

size_t StepLayout::RegionOffset(int index) const {
  const size_t r = static_cast<size_t>(cap_rows_), s = static_cast<size_t>(cap_seqs_);
  if (index <= 5) return index * r;
  return 5 * r + (index - 5) * s;
}

Result<bool> StepLayout::Reserve(const StepMetadata& step) {
  const int32_t rows = step.num_rows();
  const int32_t seqs = static_cast<int32_t>(step.seqs.size());
  const int32_t blocks = static_cast<int32_t>(step.block_tables.size());
  const int32_t logit_rows = static_cast<int32_t>(step.logit_rows.size());
  if (rows <= cap_rows_ && seqs <= cap_seqs_ && blocks <= cap_blocks_ && logit_rows <= cap_rows_) {
    return false;
  }
  cap_rows_ = std::max({cap_rows_, rows, logit_rows, 256});
  cap_seqs_ = std::max({cap_seqs_, seqs, 256});
  cap_blocks_ = std::max({cap_blocks_ * 2, blocks, 4096});
  const size_t bytes = Ints() * sizeof(int32_t);
  Result<bool> moved = device_.Ensure(bytes);
  Status host = moved.ok() ? host_.Ensure(bytes) : moved.status();
  if (!host.ok()) {
    cap_rows_ = cap_seqs_ = cap_blocks_ = 0;
    return host;
  }
  return *moved;
}

Result<DeviceStep> StepLayout::Upload(const StepMetadata& step, cudaStream_t stream) {
  const int32_t seqs = static_cast<int32_t>(step.seqs.size());
  const int32_t blocks = static_cast<int32_t>(step.block_tables.size());
  auto* h = static_cast<int32_t*>(host_.ptr);
  auto region = [&](int index) { return h + RegionOffset(index); };
  std::copy(step.tokens.begin(), step.tokens.end(), region(0));
  std::copy(step.positions.begin(), step.positions.end(), region(1));
  std::copy(step.slots.begin(), step.slots.end(), region(2));
  std::copy(step.logit_rows.begin(), step.logit_rows.end(), region(3));
  int32_t* row_seq = region(4);
  int32_t max_new = 0;
  for (int32_t s = 0; s < seqs; ++s) {
    const StepSequence& q = step.seqs[s];
    region(5)[s] = q.first_row;
    region(6)[s] = q.num_new;
    region(7)[s] = q.num_cached;
    region(8)[s] = q.block_table_begin;
    for (int32_t j = 0; j < q.num_new; ++j) row_seq[q.first_row + j] = s;
    max_new = std::max(max_new, q.num_new);
  }
  std::copy(step.block_tables.begin(), step.block_tables.end(), region(9));
  const size_t used = RegionOffset(9) + static_cast<size_t>(blocks);
  SLUICE_CUDA_RETURN(cudaMemcpyAsync(device_.ptr, host_.ptr, used * sizeof(int32_t),
                                     cudaMemcpyHostToDevice, stream),
                     "step metadata upload");
  const auto* d = static_cast<const int32_t*>(device_.ptr);
  DeviceStep ds;
  ds.tokens = d + RegionOffset(0);
  ds.positions = d + RegionOffset(1);
  ds.slots = d + RegionOffset(2);
  ds.logit_rows = d + RegionOffset(3);
  ds.row_seq = d + RegionOffset(4);
  ds.seq_first_row = d + RegionOffset(5);
  ds.seq_num_new = d + RegionOffset(6);
  ds.seq_num_cached = d + RegionOffset(7);
  ds.seq_block_begin = d + RegionOffset(8);
  ds.block_tables = d + RegionOffset(9);
  ds.rows = step.num_rows();
  ds.num_seqs = seqs;
  ds.num_logit_rows = static_cast<int32_t>(step.logit_rows.size());
  ds.block_size = step.block_size;
  ds.max_num_new = max_new;
  ds.max_context = step.max_context;
  return ds;
}

}  // namespace sluice::llm::cuda

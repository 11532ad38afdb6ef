// Sampling on the CUDA device (cuda_device_impl.h): a batch's rows of settings, penalty
// tokens and structured output's token masks go up in one transfer, the sampled tokens and
// their logprobs come back in one.

#include <cuda_runtime.h>

#include <algorithm>

#include "backends/llm/device/cuda/cuda_device_impl.h"

namespace sluice::llm {

using cuda::Ptr;

namespace {

size_t Align(size_t bytes) {
  return (bytes + 255) / 256 * 256;
}

// Writes, at `out`, each row's mask index (-1: unconstrained) and then, `mask_of_row_bytes`
// further, the masks of the constrained rows, `words` words each (zero past a row's span).
void StageTokenMasks(std::span<const RowSampling> rows, int32_t words, std::byte* out,
                     size_t mask_of_row_bytes) {
  auto* mask_of_row = reinterpret_cast<int32_t*>(out);
  auto* masks = reinterpret_cast<uint64_t*>(out + mask_of_row_bytes);
  int32_t m = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::span<const uint64_t> allowed = rows[i].allowed;
    if (allowed.empty()) {
      mask_of_row[i] = -1;
      continue;
    }
    uint64_t* mask = masks + static_cast<size_t>(m) * words;
    const size_t copied = std::min<size_t>(allowed.size(), words);
    std::copy_n(allowed.begin(), copied, mask);
    std::fill(mask + copied, mask + words, uint64_t{0});
    mask_of_row[i] = m++;
  }
}

// Where each part of one Sample call's two transfers lies, in bytes from the start of the
// staging buffers. One upload: rows | penalty tokens | penalty info [| mask of each row |
// masks]; one download, right after it: tokens | logprobs.
struct SamplingLayout {
  int32_t words = 0;  // 64-bit words of one token mask
  size_t tok_at = 0;
  size_t info_at = 0;
  size_t masks_at = 0;           // the mask of each row, then the masks
  size_t mask_of_row_bytes = 0;  // 0 without masks
  size_t in_bytes = 0;           // the upload; the download's tokens start here
  size_t logprobs_at = 0;
  size_t out_bytes = 0;  // the download
};

SamplingLayout LayOutSampling(int32_t n, int32_t vocab, size_t num_penalties, size_t num_masks) {
  SamplingLayout l;
  l.words = (vocab + 63) / 64;
  l.tok_at = Align(n * sizeof(cuda::SamplingRow));
  l.info_at = l.tok_at + Align(num_penalties * sizeof(int32_t));
  l.masks_at = l.info_at + Align(num_penalties * sizeof(cuda::PenaltyInfo));
  l.mask_of_row_bytes = num_masks > 0 ? Align(n * sizeof(int32_t)) : 0;
  l.in_bytes = l.masks_at + l.mask_of_row_bytes + Align(num_masks * l.words * sizeof(uint64_t));
  l.logprobs_at = l.in_bytes + Align(n * sizeof(int32_t));
  l.out_bytes = Align(n * sizeof(int32_t)) + Align(n * sizeof(float));
  return l;
}

// Writes each row's settings and its penalty tokens (token ids, then their info) at their
// places in `host`.
void StageRows(std::span<const RowSampling> rows, const SamplingLayout& l, std::byte* host) {
  auto* row_h = reinterpret_cast<cuda::SamplingRow*>(host);
  auto* tok_h = reinterpret_cast<int32_t*>(host + l.tok_at);
  auto* info_h = reinterpret_cast<cuda::PenaltyInfo*>(host + l.info_at);
  int32_t next = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const RowSampling& r = rows[i];
    cuda::SamplingRow& d = row_h[i];
    d = {};
    d.temperature = r.temperature;
    d.top_k = r.top_k;
    d.top_p = r.top_p;
    d.min_p = r.min_p;
    d.repetition_penalty = r.repetition_penalty;
    d.presence_penalty = r.presence_penalty;
    d.frequency_penalty = r.frequency_penalty;
    d.seed = r.seed;
    d.offset = r.offset;
    d.penalty_begin = next;
    d.penalty_count = static_cast<int32_t>(r.penalties.size());
    for (const PenaltyToken& p : r.penalties) {
      tok_h[next] = p.token;
      info_h[next] = {p.output_count, static_cast<uint8_t>(p.seen),
                      static_cast<uint8_t>(p.suppressed)};
      ++next;
    }
  }
}

}  // namespace

Status CudaDevice::Sample(Buffer& logits, int32_t vocab, std::span<const RowSampling> rows,
                          std::vector<int32_t>& tokens, std::vector<float>& logprobs) {
  const int32_t n = static_cast<int32_t>(rows.size());
  if (n == 0) return Status::Ok();
  if (logits.dtype() != DType::kF32 || logits.elements() < static_cast<size_t>(n) * vocab) {
    return Internal("sample: logits buffer too small");
  }
  size_t num_penalties = 0, num_masks = 0;
  for (const RowSampling& r : rows) {
    num_penalties += r.penalties.size();
    num_masks += r.allowed.empty() ? 0 : 1;
  }
  if (num_masks > 0 && !tuning_.token_masks) {
    return Internal("sample: token masks given to a device that does not apply them");
  }
  const SamplingLayout l = LayOutSampling(n, vocab, num_penalties, num_masks);
  RETURN_IF_ERROR(sample_host_.Ensure(l.in_bytes + l.out_bytes));
  ASSIGN_OR_RETURN(bool moved_in, sample_io_.Ensure(l.in_bytes + l.out_bytes));
  const size_t ws_need = cuda::SamplingWorkspaceBytes(n, vocab);
  ASSIGN_OR_RETURN(bool moved_ws, sample_ws_.Ensure(std::max<size_t>(ws_need, 1)));
  (void)moved_in;
  (void)moved_ws;  // sampling runs outside graphs

  auto* host = static_cast<std::byte*>(sample_host_.ptr);
  StageRows(rows, l, host);
  if (num_masks > 0) StageTokenMasks(rows, l.words, host + l.masks_at, l.mask_of_row_bytes);
  auto* dev = static_cast<std::byte*>(sample_io_.ptr);
  SLUICE_CUDA_RETURN(cudaMemcpyAsync(dev, host, l.in_bytes, cudaMemcpyHostToDevice, stream()),
                     "sampling upload");
  if (num_masks > 0) {
    cuda::ApplyTokenMasks(Ptr<float>(logits), n, vocab,
                          reinterpret_cast<const int32_t*>(dev + l.masks_at),
                          reinterpret_cast<const uint64_t*>(dev + l.masks_at + l.mask_of_row_bytes),
                          l.words, stream());
  }
  cuda::Sample(Ptr<float>(logits), n, vocab, reinterpret_cast<const cuda::SamplingRow*>(dev),
               reinterpret_cast<const int32_t*>(dev + l.tok_at),
               reinterpret_cast<const cuda::PenaltyInfo*>(dev + l.info_at), sample_ws_.ptr,
               sample_ws_.bytes, reinterpret_cast<int32_t*>(dev + l.in_bytes),
               reinterpret_cast<float*>(dev + l.logprobs_at), stream());
  Prof("Sample (with its upload)");
  SLUICE_CUDA_RETURN(cudaMemcpyAsync(host + l.in_bytes, dev + l.in_bytes, l.out_bytes,
                                     cudaMemcpyDeviceToHost, stream()),
                     "sampling download");
  RETURN_IF_ERROR(Sync("sampling"));
  if (profiler_) profiler_->EndStep();
  const auto* tokens_h = reinterpret_cast<const int32_t*>(host + l.in_bytes);
  const auto* logprobs_h = reinterpret_cast<const float*>(host + l.logprobs_at);
  tokens.assign(tokens_h, tokens_h + n);
  logprobs.assign(logprobs_h, logprobs_h + n);
  return Status::Ok();
}

}  // namespace sluice::llm

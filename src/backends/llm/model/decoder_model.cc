#include "backends/llm/model/decoder_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

namespace sluice::llm {
namespace {

// The options a model's files are not needed to check.
Status ValidateOptions(const DecoderModelOptions& options) {
  if (options.block_size < 1 || options.block_size > 1024) {
    return InvalidArgument("block_size must be in [1, 1024], got " +
                           std::to_string(options.block_size));
  }
  if (options.num_blocks < 0) {
    return InvalidArgument("num_blocks must not be negative, got " +
                           std::to_string(options.num_blocks));
  }
  if (options.num_blocks == 0 &&
      !(options.gpu_memory_utilization > 0 && options.gpu_memory_utilization <= 1)) {
    return InvalidArgument("gpu_memory_utilization must be in (0, 1], got " +
                           std::to_string(options.gpu_memory_utilization));
  }
  return Status::Ok();
}

}  // namespace

DecoderModel::DecoderModel(HfModelConfig config, GenerationConfig generation,
                           std::unique_ptr<Device> device, const DecoderModelOptions& options)
    : device_(std::move(device)),
      config_(std::move(config)),
      generation_(std::move(generation)),
      options_(options) {}

DecoderModel::~DecoderModel() = default;

Result<std::unique_ptr<DecoderModel>> DecoderModel::Create(const std::filesystem::path& folder,
                                                           std::unique_ptr<Device> device,
                                                           const DecoderModelOptions& options) {
  if (device == nullptr) return InvalidArgument("no device");
  RETURN_IF_ERROR(ValidateOptions(options));
  ASSIGN_OR_RETURN(HfModelFiles files, ReadHfModelFiles(folder));
  DecoderModelOptions opts = options;
  const int32_t max_pos = files.config.max_position_embeddings;
  if (opts.max_model_len < 0 || opts.max_model_len > max_pos) {
    return InvalidArgument("max_model_len " + std::to_string(opts.max_model_len) +
                           " exceeds the model's max_position_embeddings " +
                           std::to_string(max_pos));
  }
  if (opts.max_model_len == 0) opts.max_model_len = max_pos;
  ASSIGN_OR_RETURN(TpLayout tp, MakeTpLayout(files.config, opts.tp_rank, opts.tp_size));
  if (tp.size > 1 && (opts.collective == nullptr || opts.collective->size() != tp.size ||
                      opts.collective->rank() != tp.rank)) {
    return InvalidArgument("tensor parallel rank " + std::to_string(tp.rank) + " of " +
                           std::to_string(tp.size) + " needs a collective of that rank and size");
  }
  HfModelConfig local = files.config;
  local.num_heads = tp.q_heads;
  local.num_kv_heads = tp.kv_heads;
  local.intermediate_size = tp.inter;
  HfModelConfig full = std::move(files.config);
  std::unique_ptr<DecoderModel> model(
      new DecoderModel(std::move(local), std::move(files.generation), std::move(device), opts));
  model->full_config_ = std::move(full);
  model->tp_ = tp;
  const HfModelConfig& c = model->config_;
  model->shape_ = {c.vocab_size, c.num_layers, c.num_kv_heads, c.head_dim, opts.max_model_len};
  model->rope_ = {c.head_dim, c.RopeInvFreq()};
  model->attention_ = {c.num_heads, c.num_kv_heads, c.head_dim,
                       static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.head_dim)))};
  auto lap = [last = std::chrono::steady_clock::now()]() mutable {
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
    return ms;
  };
  ASSIGN_OR_RETURN(auto store, WeightStore::Open(folder));
  model->timings_.open_ms = lap();
  ASSIGN_OR_RETURN(model->weights_,
                   LoadDecoderWeights(*store, model->full_config_, model->tp_, *model->device_));
  model->timings_.weights_ms = lap();

  int32_t num_blocks = opts.num_blocks;
  if (num_blocks == 0) {
    ASSIGN_OR_RETURN(num_blocks, model->KvBlocksFromMemory());
  }
  RETURN_IF_ERROR(model->AllocateKvCache(num_blocks));
  model->sizing_.num_blocks = num_blocks;
  model->sizing_.bytes_per_block =
      KvBytesPerBlock(c, opts.block_size, model->device_->activation_dtype());
  model->timings_.kv_cache_ms = lap();
  RETURN_IF_ERROR(model->CaptureGraphs());
  model->timings_.graphs_ms = lap();
  return model;
}

// KV cache: one K and one V buffer per layer, [num_blocks, block_size, kv_heads, head_dim].
Status DecoderModel::AllocateKvCache(int32_t num_blocks) {
  const HfModelConfig& c = config_;
  const size_t kv_width = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
  const size_t slots = static_cast<size_t>(num_blocks) * options_.block_size;
  if (num_blocks < 1 || slots > std::numeric_limits<size_t>::max() / kv_width / 8) {
    return InvalidArgument("KV cache of " + std::to_string(num_blocks) + " blocks is invalid");
  }
  device_->DropGraphs();
  FreeKvCache();
  kv_cache_.resize(weights_.layers.size());
  const DType act = device_->activation_dtype();
  for (KvCacheLayer& layer : kv_cache_) {
    ASSIGN_OR_RETURN(layer.k, device_->Allocate(act, slots * kv_width));
    ASSIGN_OR_RETURN(layer.v, device_->Allocate(act, slots * kv_width));
  }
  options_.num_blocks = num_blocks;
  return Status::Ok();
}

void DecoderModel::FreeKvCache() {
  for (KvCacheLayer& layer : kv_cache_) {
    layer.k.reset();
    layer.v.reset();
  }
}

// vLLM's rule (kv_cache_sizing.h): a profiling pass brings every workspace to its peak size;
// then the KV cache gets what is left of gpu_memory_utilization x the device's memory.
Result<int32_t> DecoderModel::KvBlocksFromMemory() {
  if (!device_->memory().has_value()) {
    return InvalidArgument("the " + std::string(device_->name()) +
                           " device cannot size the KV cache from its memory: give "
                           "num_gpu_blocks_override or a KV cache size");
  }
  const int32_t rows = std::clamp(options_.profile_rows, 1, options_.max_model_len);
  RETURN_IF_ERROR(ProfilePeakStep(rows));
  const std::optional<DeviceMemory> after = device_->memory();
  if (!after.has_value()) return Internal("device memory query failed after profiling");
  return KvBlocksFromBudget(
      *after, options_.gpu_memory_utilization,
      KvBytesPerBlock(config_, options_.block_size, device_->activation_dtype()), rows, sizing_);
}

// A prefill step of `rows` new tokens in `seqs` sequences (the first takes the remainder),
// every sequence's blocks being 0, 1, ... of a cache of ceil(rows / block_size) blocks: where
// several sequences share blocks their K/V overwrite one another's, which a step run only for
// its shape may do.
StepMetadata DecoderModel::SyntheticPrefill(int32_t rows, int32_t seqs) const {
  const int32_t bs = options_.block_size;
  StepMetadata step;
  step.block_size = bs;
  int32_t row = 0;
  for (int32_t s = 0; s < seqs; ++s) {
    const int32_t n = rows / seqs + (s == 0 ? rows % seqs : 0);
    const int32_t blocks = (n + bs - 1) / bs;
    step.seqs.push_back({.first_row = row,
                         .num_new = n,
                         .num_cached = 0,
                         .block_table_begin = static_cast<int32_t>(step.block_tables.size()),
                         .num_blocks = blocks});
    for (int32_t b = 0; b < blocks; ++b) step.block_tables.push_back(b);
    for (int32_t i = 0; i < n; ++i) {
      step.tokens.push_back((row + i) % config_.vocab_size);
      step.positions.push_back(i);
      step.slots.push_back(i);
    }
    step.logit_rows.push_back(row + n - 1);
    step.max_context = std::max(step.max_context, n);
    row += n;
  }
  return step;
}

Status DecoderModel::ProfilePeakStep(int32_t rows) {
  const int32_t bs = options_.block_size;
  RETURN_IF_ERROR(AllocateKvCache((rows + bs - 1) / bs));
  RETURN_IF_ERROR(Execute(SyntheticPrefill(rows, 1), 0));
  // A step of each of the device's shape buckets (Device::WarmUpRows), before the memory is
  // measured: what they allocate is every step's too. Up to kWarmLogitRows sequences a step,
  // so that the LM head's row counts (a step's finishing prompts) are warmed as well.
  constexpr int32_t kWarmLogitRows = 256;
  for (const int32_t warm : device_->WarmUpRows(rows)) {
    RETURN_IF_ERROR(Execute(SyntheticPrefill(warm, std::min(warm, kWarmLogitRows)), 0));
  }
  const int32_t bucket = device_->GraphBucket(options_.max_graph_batch);
  const int32_t decode_rows = std::max(bucket, std::min(options_.max_graph_batch, 256));
  if (decode_rows > 0) {
    StepMetadata decode;
    decode.block_size = bs;
    PadStep(decode, decode_rows);
    decode.max_context = options_.max_model_len;  // a graph's attention covers any context
    RETURN_IF_ERROR(Execute(decode, 0));
    if (device_->can_sample()) {
      std::vector<RowSampling> sampling(static_cast<size_t>(decode_rows));
      for (RowSampling& r : sampling) r.top_p = 0.9f;  // the costliest path
      std::vector<int32_t> tokens;
      std::vector<float> logprobs;
      RETURN_IF_ERROR(device_->Sample(*ws_.logits, config_.vocab_size, sampling, tokens, logprobs));
    }
  }
  float probe = 0;
  RETURN_IF_ERROR(device_->Download(*ws_.logits, &probe, sizeof(probe)));
  FreeKvCache();
  return Status::Ok();
}

// Captures the decode graph of every bucket up to max_graph_batch now, so that no request
// pays for a capture. Padding rows write nothing, so the KV cache is untouched.
Status DecoderModel::CaptureGraphs() {
  if (options_.max_graph_batch < 1) return Status::Ok();
  int32_t last = 0;
  for (int32_t n = 1; n <= options_.max_graph_batch; ++n) {
    const int32_t bucket = device_->GraphBucket(n);
    if (bucket == 0 || bucket == last) continue;
    last = bucket;
    StepMetadata step;
    step.block_size = options_.block_size;
    PadStep(step, bucket);
    step.max_context = 1;
    RETURN_IF_ERROR(Execute(step, bucket));  // warm-up, eager
    RETURN_IF_ERROR(Execute(step, bucket));  // capture and replay
    ++sizing_.graphs_captured;
  }
  if (sizing_.graphs_captured > 0) {
    float probe = 0;
    RETURN_IF_ERROR(device_->Download(*ws_.logits, &probe, sizeof(probe)));
  }
  return Status::Ok();
}

Status DecoderModel::EnsureWorkspace(int32_t rows, int32_t logit_rows) {
  const HfModelConfig& c = config_;
  const DType act = device_->activation_dtype();
  if (rows > ws_.rows || logit_rows > ws_.logit_rows) device_->DropGraphs();  // addresses move
  if (rows > ws_.rows) {
    const size_t n = static_cast<size_t>(rows);
    const size_t q_width = static_cast<size_t>(c.num_heads) * c.head_dim;
    const size_t kv_width = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
    ASSIGN_OR_RETURN(ws_.h, device_->Allocate(act, n * c.hidden_size));
    ASSIGN_OR_RETURN(ws_.x, device_->Allocate(act, n * c.hidden_size));
    ASSIGN_OR_RETURN(ws_.o, device_->Allocate(act, n * c.hidden_size));
    ASSIGN_OR_RETURN(ws_.q, device_->Allocate(act, n * q_width));
    ASSIGN_OR_RETURN(ws_.attn, device_->Allocate(act, n * q_width));
    ASSIGN_OR_RETURN(ws_.k, device_->Allocate(act, n * kv_width));
    ASSIGN_OR_RETURN(ws_.v, device_->Allocate(act, n * kv_width));
    ASSIGN_OR_RETURN(ws_.gate, device_->Allocate(act, n * c.intermediate_size));
    ASSIGN_OR_RETURN(ws_.up, device_->Allocate(act, n * c.intermediate_size));
    ASSIGN_OR_RETURN(ws_.act, device_->Allocate(act, n * c.intermediate_size));
    ws_.rows = rows;
  }
  if (logit_rows > ws_.logit_rows) {
    const size_t n = static_cast<size_t>(logit_rows);
    ASSIGN_OR_RETURN(ws_.sel, device_->Allocate(act, n * c.hidden_size));
    ASSIGN_OR_RETURN(ws_.sel_norm, device_->Allocate(act, n * c.hidden_size));
    ASSIGN_OR_RETURN(ws_.logits, device_->Allocate(DType::kF32, n * c.vocab_size));
    ws_.logit_rows = logit_rows;
  }
  return Status::Ok();
}

Status DecoderModel::BuildStep(const ForwardBatch& batch, StepMetadata& step) const {
  const int32_t bs = options_.block_size;
  step.tokens.clear();
  step.positions.clear();
  step.slots.clear();
  step.seqs.clear();
  step.block_tables.clear();
  step.logit_rows.clear();
  step.block_size = bs;
  step.max_context = 0;
  if (batch.seqs.empty()) return InvalidArgument("forward batch has no sequences");
  size_t total_new = 0;
  for (const auto& s : batch.seqs) {
    if (s.num_new_tokens < 1 || s.num_cached_tokens < 0) {
      return InvalidArgument("sequence with " + std::to_string(s.num_new_tokens) + " new and " +
                             std::to_string(s.num_cached_tokens) + " cached tokens");
    }
    total_new += static_cast<size_t>(s.num_new_tokens);
  }
  if (total_new != batch.tokens.size()) {
    return InvalidArgument("forward batch has " + std::to_string(batch.tokens.size()) +
                           " tokens but its sequences add up to " + std::to_string(total_new));
  }
  if (total_new > static_cast<size_t>(std::numeric_limits<int32_t>::max() / 2)) {
    return InvalidArgument("forward batch too large");
  }
  int32_t row = 0;
  for (const auto& s : batch.seqs) {
    const int64_t context = int64_t{s.num_cached_tokens} + s.num_new_tokens;
    if (context > options_.max_model_len) {
      return InvalidArgument("sequence of " + std::to_string(context) +
                             " tokens exceeds the context limit " +
                             std::to_string(options_.max_model_len));
    }
    const int64_t blocks_needed = (context + bs - 1) / bs;
    if (static_cast<int64_t>(s.block_table.size()) < blocks_needed) {
      return InvalidArgument("block table of " + std::to_string(s.block_table.size()) +
                             " blocks cannot hold " + std::to_string(context) + " tokens");
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      const int32_t id = s.block_table[b];
      if (id < 0 || id >= options_.num_blocks) {
        return InvalidArgument("block id " + std::to_string(id) + " outside [0, " +
                               std::to_string(options_.num_blocks) + ")");
      }
    }
    StepSequence seq;
    seq.first_row = row;
    seq.num_new = s.num_new_tokens;
    seq.num_cached = s.num_cached_tokens;
    seq.block_table_begin = static_cast<int32_t>(step.block_tables.size());
    seq.num_blocks = static_cast<int32_t>(blocks_needed);
    step.block_tables.insert(step.block_tables.end(), s.block_table.begin(),
                             s.block_table.begin() + blocks_needed);
    for (int32_t j = 0; j < s.num_new_tokens; ++j) {
      const int32_t token = batch.tokens[row + j];
      if (token < 0 || token >= config_.vocab_size) {
        return InvalidArgument("token id " + std::to_string(token) + " outside the vocabulary (" +
                               std::to_string(config_.vocab_size) + ")");
      }
      const int32_t pos = s.num_cached_tokens + j;
      step.tokens.push_back(token);
      step.positions.push_back(pos);
      step.slots.push_back(s.block_table[pos / bs] * bs + pos % bs);
    }
    row += s.num_new_tokens;
    if (s.needs_logits) step.logit_rows.push_back(row - 1);
    step.seqs.push_back(seq);
    step.max_context = std::max(step.max_context, static_cast<int32_t>(context));
  }
  return Status::Ok();
}

void DecoderModel::PadStep(StepMetadata& step, int32_t rows) const {
  for (int32_t r = step.num_rows(); r < rows; ++r) {
    step.seqs.push_back({.first_row = r,
                         .num_new = 1,
                         .num_cached = 0,
                         .block_table_begin = static_cast<int32_t>(step.block_tables.size()),
                         .num_blocks = 1});
    step.block_tables.push_back(0);
    step.tokens.push_back(0);
    step.positions.push_back(0);
    step.slots.push_back(-1);
    step.logit_rows.push_back(r);
  }
  step.max_context = std::max(step.max_context, 1);
}

Status DecoderModel::Run(const ForwardBatch& batch, int32_t& out_rows) {
  RETURN_IF_ERROR(BuildStep(batch, step_));
  out_rows = static_cast<int32_t>(step_.logit_rows.size());
  const int32_t seqs = static_cast<int32_t>(step_.seqs.size());
  int32_t bucket = 0;
  if (step_.num_rows() == seqs && out_rows == seqs) {  // a plain decode batch
    bucket = device_->GraphBucket(seqs);
    if (bucket > 0) PadStep(step_, bucket);
  }
  return Execute(step_, bucket);
}

Status DecoderModel::Execute(const StepMetadata& step, int32_t bucket) {
  const int32_t rows = step.num_rows();
  const int32_t out_rows = static_cast<int32_t>(step.logit_rows.size());
  RETURN_IF_ERROR(EnsureWorkspace(rows, std::max(1, out_rows)));
  RETURN_IF_ERROR(device_->BeginStep(step));
  Status st = device_->RunStep(bucket, [&] { IssueOps(rows, out_rows); });
  if (!op_error_.ok()) {
    if (st.ok()) st = std::move(op_error_);
    op_error_ = Status::Ok();
  }
  return st;
}

void DecoderModel::AllReduce(Buffer& buf, size_t elements) {
  if (tp_.size == 1) return;
  Status st = options_.collective->AllReduceSum(*device_, buf, elements);
  if (!st.ok() && op_error_.ok()) op_error_ = std::move(st);
}

void DecoderModel::ProjectAddNorm(const Buffer& act, const Buffer& weight, const Buffer* bias,
                                  int32_t rows, int32_t in, const Buffer& norm) {
  const int32_t hidden = config_.hidden_size;
  const float eps = static_cast<float>(config_.rms_norm_eps);
  if (tp_.size == 1) {
    device_->LinearAddRmsNorm(act, weight, bias, rows, in, hidden, *ws_.o, *ws_.h, norm, eps,
                              *ws_.x);
    return;
  }
  device_->Linear(act, weight, bias, rows, in, hidden, *ws_.o);
  AllReduce(*ws_.o, static_cast<size_t>(rows) * hidden);
  device_->AddRmsNorm(*ws_.h, *ws_.o, norm, rows, hidden, eps, *ws_.x);
}

void DecoderModel::IssueOps(int32_t rows, int32_t out_rows) {
  const HfModelConfig& c = config_;
  Device& d = *device_;
  const int32_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int32_t q_width = c.num_heads * c.head_dim;
  const int32_t kv_width = c.num_kv_heads * c.head_dim;
  const float eps = static_cast<float>(c.rms_norm_eps);

  // h is the residual stream; each sub-block's output is added into it by the next norm.
  const std::vector<DecoderLayerWeights>& layers = weights_.layers;
  d.Embedding(*weights_.embed, hidden, *ws_.h);
  d.RmsNorm(*ws_.h, *layers[0].input_norm, rows, hidden, eps, *ws_.x);
  for (int32_t i = 0; i < c.num_layers; ++i) {
    const DecoderLayerWeights& l = layers[i];
    KvCacheLayer& kv = kv_cache_[i];
    const LinearPart qkv[] = {{l.q.get(), l.q_bias.get(), q_width, ws_.q.get()},
                              {l.k.get(), l.k_bias.get(), kv_width, ws_.k.get()},
                              {l.v.get(), l.v_bias.get(), kv_width, ws_.v.get()}};
    d.LinearGroup(*ws_.x, qkv, rows, hidden);
    d.RopeKvWriteAttention(*ws_.q, *ws_.k, *ws_.v, rope_, kv_width, *kv.k, *kv.v, attention_,
                           *ws_.attn);
    ProjectAddNorm(*ws_.attn, *l.o, l.o_bias.get(), rows, q_width, *l.post_norm);
    d.SwiGlu(*ws_.x, {l.gate.get(), l.gate_bias.get(), inter, ws_.gate.get()},
             {l.up.get(), l.up_bias.get(), inter, ws_.up.get()}, rows, hidden, *ws_.act);
    if (i + 1 < c.num_layers) {
      ProjectAddNorm(*ws_.act, *l.down, l.down_bias.get(), rows, inter, *layers[i + 1].input_norm);
    } else {  // o stays apart from h: the final norm is only for the logit rows (below)
      d.Linear(*ws_.act, *l.down, l.down_bias.get(), rows, inter, hidden, *ws_.o);
      AllReduce(*ws_.o, static_cast<size_t>(rows) * hidden);
    }
  }
  if (out_rows == 0) return;
  // Only the rows that need logits go through the final norm and the LM head. Adding the
  // last MLP output to the gathered rows equals gathering the updated residual.
  d.GatherRows(*ws_.h, hidden, *ws_.sel);
  d.GatherRows(*ws_.o, hidden, *ws_.x);
  d.AddRmsNorm(*ws_.sel, *ws_.x, *weights_.final_norm, out_rows, hidden, eps, *ws_.sel_norm);
  const Buffer& head = weights_.lm_head ? *weights_.lm_head : *weights_.embed;
  d.Linear(*ws_.sel_norm, head, nullptr, out_rows, hidden, c.vocab_size, *ws_.logits);
}

Status DecoderModel::Forward(const ForwardBatch& batch, std::vector<float>& logits) {
  int32_t out_rows = 0;
  RETURN_IF_ERROR(Run(batch, out_rows));
  logits.resize(static_cast<size_t>(out_rows) * config_.vocab_size);
  if (out_rows == 0) {
    float probe = 0;  // still waits for the step and reports its errors
    return device_->Download(*ws_.h, &probe, 0);
  }
  return device_->Download(*ws_.logits, logits.data(), logits.size() * sizeof(float));
}

Status DecoderModel::ForwardSample(const ForwardBatch& batch, std::span<const RowSampling> rows,
                                   std::vector<int32_t>& tokens, std::vector<float>& logprobs,
                                   const std::function<void()>& before_sampling) {
  int32_t out_rows = 0;
  RETURN_IF_ERROR(Run(batch, out_rows));
  if (before_sampling) before_sampling();  // the device is busy with the forward pass meanwhile
  if (static_cast<size_t>(out_rows) != rows.size()) {
    return InvalidArgument("forward batch has " + std::to_string(out_rows) +
                           " logits rows but sampling settings for " + std::to_string(rows.size()));
  }
  if (out_rows == 0) {
    tokens.clear();
    logprobs.clear();
    float probe = 0;
    return device_->Download(*ws_.h, &probe, 0);
  }
  return device_->Sample(*ws_.logits, config_.vocab_size, rows, tokens, logprobs);
}

}  // namespace sluice::llm

#include "backends/llm/model/decoder_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <string>

namespace sluice::llm {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<DType> WeightDType(const SafeTensor& t, const std::string& file) {
  switch (t.dtype) {
    case StDType::kF32:
      return DType::kF32;
    case StDType::kBF16:
      return DType::kBF16;
    case StDType::kF16:
      return DType::kF16;
    case StDType::kI32:
    case StDType::kI8:
    case StDType::kU8:
      break;
  }
  return InvalidArgument(file + ": tensor '" + t.name + "': dtype " +
                         std::string(StDTypeName(t.dtype)) + " is not a float weight dtype");
}

// An I32 tensor of exactly `shape`; null when absent and not `required`.
Result<const SafeTensor*> IntTensor(const WeightStore& store, const std::string& name,
                                    const std::vector<int64_t>& shape, bool required,
                                    const SafetensorsFile** file) {
  const SafeTensor* t = store.Find(name, file);
  if (t == nullptr) {
    if (!required) return nullptr;
    return InvalidArgument("model weights: tensor '" + name + "' is missing");
  }
  if (t->dtype != StDType::kI32 || t->shape != shape) {
    return InvalidArgument((*file)->name() + ": tensor '" + name + "' is " +
                           std::string(StDTypeName(t->dtype)) + " " + ShapeString(t->shape) +
                           ", expected I32 " + ShapeString(shape));
  }
  return t;
}

// The GPTQ tensors of the linear `prefix` (hf_config.h GptqConfig), W [in, out], checked.
// The packed weights are read in place: keep_alive holds qweight's own file (shards may
// split a layer's tensors; the others are copied at load).
Result<GptqWeightSource> GptqSource(const WeightStore& store, const GptqConfig& g,
                                    const std::string& prefix, int64_t out, int64_t in) {
  const int64_t pack = g.pack();
  if (in % pack != 0 || out % pack != 0) {
    return InvalidArgument("model weights: '" + prefix + "' is " + std::to_string(out) + " x " +
                           std::to_string(in) + ", not a multiple of " + std::to_string(pack) +
                           " as " + std::to_string(g.bits) + "-bit GPTQ needs");
  }
  const int64_t groups = g.groups(static_cast<int32_t>(in));
  const SafetensorsFile* qweight_file = nullptr;
  const SafetensorsFile* other = nullptr;
  ASSIGN_OR_RETURN(const SafeTensor* qweight,
                   IntTensor(store, prefix + ".qweight", {in / pack, out}, true, &qweight_file));
  ASSIGN_OR_RETURN(const SafeTensor* qzeros,
                   IntTensor(store, prefix + ".qzeros", {groups, out / pack}, true, &other));
  ASSIGN_OR_RETURN(const SafeTensor* g_idx,
                   IntTensor(store, prefix + ".g_idx", {in}, false, &other));
  const std::string scales_name = prefix + ".scales";
  const SafeTensor* scales = store.Find(scales_name, &other);
  if (scales == nullptr) {
    return InvalidArgument("model weights: tensor '" + scales_name + "' is missing");
  }
  if (scales->shape != std::vector<int64_t>{groups, out}) {
    return InvalidArgument(other->name() + ": tensor '" + scales_name + "' has shape " +
                           ShapeString(scales->shape) + ", expected " +
                           ShapeString({groups, out}));
  }
  GptqWeightSource w;
  ASSIGN_OR_RETURN(w.scales_dtype, WeightDType(*scales, other->name()));
  w.bits = g.bits;
  w.in = static_cast<int32_t>(in);
  w.out = static_cast<int32_t>(out);
  w.groups = static_cast<int32_t>(groups);
  w.zero_offset = g.zero_offset;
  w.group_size = g.group_size;
  w.qweight = qweight->data;
  w.qzeros = qzeros->data;
  w.scales = scales->data;
  w.g_idx = g_idx != nullptr ? g_idx->data : nullptr;
  w.keep_alive = qweight_file->mapping();
  return w;
}

}  // namespace

DecoderModel::DecoderModel(HfModelConfig config, GenerationConfig generation,
                           std::unique_ptr<Device> device, const DecoderModelOptions& options)
    : device_(std::move(device)),
      config_(std::move(config)),
      generation_(std::move(generation)),
      options_(options) {}

DecoderModel::~DecoderModel() = default;

size_t DecoderModel::KvBytesPerBlock(const HfModelConfig& c, int32_t block_size, DType dtype) {
  return 2ull * c.num_layers * static_cast<size_t>(block_size) * c.num_kv_heads * c.head_dim *
         DTypeSize(dtype);
}

Result<std::unique_ptr<DecoderModel>> DecoderModel::Create(const std::filesystem::path& folder,
                                                           std::unique_ptr<Device> device,
                                                           const DecoderModelOptions& options) {
  if (device == nullptr) return InvalidArgument("no device");
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
  RETURN_IF_ERROR(model->LoadWeights(*store));
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
  for (auto& layer : layers_) {
    layer.k_cache.reset();
    layer.v_cache.reset();
  }
  const DType act = device_->activation_dtype();
  for (auto& layer : layers_) {
    ASSIGN_OR_RETURN(layer.k_cache, device_->Allocate(act, slots * kv_width));
    ASSIGN_OR_RETURN(layer.v_cache, device_->Allocate(act, slots * kv_width));
  }
  options_.num_blocks = num_blocks;
  return Status::Ok();
}

// vLLM's rule: run the largest step the engine will run (and the largest graph decode batch
// with its sampling), so that every workspace reaches its peak size; then the KV cache gets
// what is left of gpu_memory_utilization x the device's memory.
Result<int32_t> DecoderModel::KvBlocksFromMemory() {
  const std::optional<DeviceMemory> total = device_->memory();
  if (!total.has_value()) {
    return InvalidArgument("the " + std::string(device_->name()) +
                           " device cannot size the KV cache from its memory: give "
                           "num_gpu_blocks_override or a KV cache size");
  }
  const int32_t bs = options_.block_size;
  const int32_t rows = std::clamp(options_.profile_rows, 1, options_.max_model_len);
  RETURN_IF_ERROR(AllocateKvCache((rows + bs - 1) / bs));
  StepMetadata prefill;
  prefill.block_size = bs;
  prefill.max_context = rows;
  prefill.seqs.push_back({.first_row = 0, .num_new = rows, .num_cached = 0,
                          .block_table_begin = 0, .num_blocks = (rows + bs - 1) / bs});
  for (int32_t b = 0; b < (rows + bs - 1) / bs; ++b) prefill.block_tables.push_back(b);
  for (int32_t i = 0; i < rows; ++i) {
    prefill.tokens.push_back(i % config_.vocab_size);
    prefill.positions.push_back(i);
    prefill.slots.push_back(i);
  }
  prefill.logit_rows.push_back(rows - 1);
  RETURN_IF_ERROR(Execute(prefill, 0));
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
  for (auto& layer : layers_) {
    layer.k_cache.reset();
    layer.v_cache.reset();
  }
  const std::optional<DeviceMemory> after = device_->memory();
  if (!after.has_value()) return Internal("device memory query failed after profiling");
  const size_t per_block = KvBytesPerBlock(config_, bs, device_->activation_dtype());
  const double budget = options_.gpu_memory_utilization * static_cast<double>(after->total);
  const size_t used = after->total - after->free;
  sizing_.from_memory = true;
  sizing_.device_total_bytes = after->total;
  sizing_.used_before_cache_bytes = used;
  const double left = budget - static_cast<double>(used);
  auto mib = [](double b) { return std::to_string(static_cast<int64_t>(b / (1 << 20))) + " MiB"; };
  if (left < static_cast<double>(per_block)) {
    return ResourceExhausted(
        "gpu_memory_utilization " + std::to_string(options_.gpu_memory_utilization) + " of " +
        mib(static_cast<double>(after->total)) + " leaves " + mib(std::max(left, 0.0)) +
        " for the KV cache after " + mib(static_cast<double>(used)) +
        " in use (weights, activations of a " + std::to_string(rows) +
        "-token step, other processes); one block needs " + mib(static_cast<double>(per_block)));
  }
  return static_cast<int32_t>(
      std::min<double>(left / static_cast<double>(per_block), std::numeric_limits<int32_t>::max()));
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

Status DecoderModel::LoadWeights(const WeightStore& store) {
  const HfModelConfig& c = full_config_;  // the checkpoint's shapes; slices below
  // Finds tensor `name`, checks that it has exactly `shape` and a float dtype.
  auto source = [&](const std::string& name, std::vector<int64_t> shape) -> Result<WeightSource> {
    const SafetensorsFile* file = nullptr;
    const SafeTensor* t = store.Find(name, &file);
    if (t == nullptr) return InvalidArgument("model weights: tensor '" + name + "' is missing");
    if (t->shape != shape) {
      return InvalidArgument(file->name() + ": tensor '" + name + "' has shape " +
                             ShapeString(t->shape) + ", expected " + ShapeString(shape));
    }
    ASSIGN_OR_RETURN(DType dtype, WeightDType(*t, file->name()));
    return WeightSource{dtype, t->data, t->elements, file->mapping()};
  };
  auto put = [&](const WeightSource& w, std::unique_ptr<Buffer>& out) -> Status {
    ASSIGN_OR_RETURN(out, device_->LoadWeight(w.dtype, w.host, w.elements, w.keep_alive));
    return Status::Ok();
  };
  auto load = [&](const std::string& name, std::vector<int64_t> shape,
                  std::unique_ptr<Buffer>& out) -> Status {
    ASSIGN_OR_RETURN(WeightSource w, source(name, std::move(shape)));
    return put(w, out);
  };
  // Weights read by one LinearGroup, loaded together (a device may place them back to back).
  auto put_group = [&](std::vector<WeightSource> parts,
                       std::vector<std::unique_ptr<Buffer>*> outs) -> Status {
    ASSIGN_OR_RETURN(auto buffers, device_->LoadWeightGroup(parts));
    if (buffers.size() != outs.size()) return Internal("device loaded a wrong number of weights");
    for (size_t i = 0; i < outs.size(); ++i) *outs[i] = std::move(buffers[i]);
    return Status::Ok();
  };
  // This rank's part (tensor_parallel.h): output rows of column-parallel weights (and their
  // biases), input columns of row-parallel ones; row-parallel biases are added by rank 0 only.
  const TpLayout& t = tp_;
  const bool sharded = t.size > 1;
  const int64_t hd = c.head_dim;
  auto out_rows = [&](const WeightSource& w, int64_t cols, int64_t first, int64_t count) {
    return sharded ? SliceRows(w, cols, first, count) : w;
  };
  auto in_cols = [&](const WeightSource& w, int64_t rows, int64_t cols, int64_t first,
                     int64_t count) {
    return sharded ? SliceColumns(w, rows, cols, first, count) : w;
  };
  const int64_t hidden = c.hidden_size, inter = c.intermediate_size;
  const int64_t q_width = int64_t{c.num_heads} * c.head_dim;
  const int64_t kv_width = int64_t{c.num_kv_heads} * c.head_dim;
  const int64_t q0 = t.q_head_first * hd, qn = t.q_heads * hd;
  const int64_t kv0 = t.kv_head_first * hd, kvn = t.kv_heads * hd;
  // A GPTQ checkpoint's q, k, v, o, gate, up and down: each linear on its own.
  auto load_gptq = [&](const std::string& prefix, int64_t out, int64_t in,
                       std::unique_ptr<Buffer>& dst) -> Status {
    ASSIGN_OR_RETURN(GptqWeightSource w, GptqSource(store, *c.gptq, prefix, out, in));
    Result<std::unique_ptr<Buffer>> buffer = device_->LoadGptqWeight(w);
    if (!buffer.ok()) {
      return Status(buffer.status().code(), "model weights: '" + prefix + "': " +
                                                buffer.status().message());
    }
    dst = std::move(*buffer);
    return Status::Ok();
  };
  if (c.gptq && sharded) {
    return Unsupported("tensor parallelism over GPTQ weights is not supported");
  }
  RETURN_IF_ERROR(load("model.embed_tokens.weight", {c.vocab_size, hidden}, embed_));
  RETURN_IF_ERROR(load("model.norm.weight", {hidden}, final_norm_));
  if (!c.tie_word_embeddings) {
    RETURN_IF_ERROR(load("lm_head.weight", {c.vocab_size, hidden}, lm_head_));
  }
  layers_.resize(c.num_layers);
  for (int32_t i = 0; i < c.num_layers; ++i) {
    Layer& l = layers_[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    RETURN_IF_ERROR(load(p + "input_layernorm.weight", {hidden}, l.input_norm));
    RETURN_IF_ERROR(load(p + "post_attention_layernorm.weight", {hidden}, l.post_norm));
    if (c.gptq) {
      RETURN_IF_ERROR(load_gptq(p + "self_attn.q_proj", q_width, hidden, l.q));
      RETURN_IF_ERROR(load_gptq(p + "self_attn.k_proj", kv_width, hidden, l.k));
      RETURN_IF_ERROR(load_gptq(p + "self_attn.v_proj", kv_width, hidden, l.v));
      RETURN_IF_ERROR(load_gptq(p + "self_attn.o_proj", hidden, q_width, l.o));
      RETURN_IF_ERROR(load_gptq(p + "mlp.gate_proj", inter, hidden, l.gate));
      RETURN_IF_ERROR(load_gptq(p + "mlp.up_proj", inter, hidden, l.up));
      RETURN_IF_ERROR(load_gptq(p + "mlp.down_proj", hidden, inter, l.down));
    } else {
      ASSIGN_OR_RETURN(WeightSource q, source(p + "self_attn.q_proj.weight", {q_width, hidden}));
      ASSIGN_OR_RETURN(WeightSource k, source(p + "self_attn.k_proj.weight", {kv_width, hidden}));
      ASSIGN_OR_RETURN(WeightSource v, source(p + "self_attn.v_proj.weight", {kv_width, hidden}));
      RETURN_IF_ERROR(put_group({out_rows(q, hidden, q0, qn), out_rows(k, hidden, kv0, kvn),
                                 out_rows(v, hidden, kv0, kvn)},
                                {&l.q, &l.k, &l.v}));
      ASSIGN_OR_RETURN(WeightSource o, source(p + "self_attn.o_proj.weight", {hidden, q_width}));
      RETURN_IF_ERROR(put(in_cols(o, hidden, q_width, q0, qn), l.o));
      ASSIGN_OR_RETURN(WeightSource gate, source(p + "mlp.gate_proj.weight", {inter, hidden}));
      ASSIGN_OR_RETURN(WeightSource up, source(p + "mlp.up_proj.weight", {inter, hidden}));
      RETURN_IF_ERROR(put_group({out_rows(gate, hidden, t.inter_first, t.inter),
                                 out_rows(up, hidden, t.inter_first, t.inter)},
                                {&l.gate, &l.up}));
      ASSIGN_OR_RETURN(WeightSource down, source(p + "mlp.down_proj.weight", {hidden, inter}));
      RETURN_IF_ERROR(put(in_cols(down, hidden, inter, t.inter_first, t.inter), l.down));
    }
    if (c.qkv_bias) {
      ASSIGN_OR_RETURN(WeightSource qb, source(p + "self_attn.q_proj.bias", {q_width}));
      ASSIGN_OR_RETURN(WeightSource kb, source(p + "self_attn.k_proj.bias", {kv_width}));
      ASSIGN_OR_RETURN(WeightSource vb, source(p + "self_attn.v_proj.bias", {kv_width}));
      RETURN_IF_ERROR(put(out_rows(qb, 1, q0, qn), l.q_bias));
      RETURN_IF_ERROR(put(out_rows(kb, 1, kv0, kvn), l.k_bias));
      RETURN_IF_ERROR(put(out_rows(vb, 1, kv0, kvn), l.v_bias));
    }
    if (c.o_bias) {
      ASSIGN_OR_RETURN(WeightSource ob, source(p + "self_attn.o_proj.bias", {hidden}));
      if (t.rank == 0) RETURN_IF_ERROR(put(ob, l.o_bias));
    }
    if (c.mlp_bias) {
      ASSIGN_OR_RETURN(WeightSource gb, source(p + "mlp.gate_proj.bias", {inter}));
      ASSIGN_OR_RETURN(WeightSource ub, source(p + "mlp.up_proj.bias", {inter}));
      ASSIGN_OR_RETURN(WeightSource db, source(p + "mlp.down_proj.bias", {hidden}));
      RETURN_IF_ERROR(put(out_rows(gb, 1, t.inter_first, t.inter), l.gate_bias));
      RETURN_IF_ERROR(put(out_rows(ub, 1, t.inter_first, t.inter), l.up_bias));
      if (t.rank == 0) RETURN_IF_ERROR(put(db, l.down_bias));
    }
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
    step.seqs.push_back({.first_row = r, .num_new = 1, .num_cached = 0,
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
  d.Embedding(*embed_, hidden, *ws_.h);
  d.RmsNorm(*ws_.h, *layers_[0].input_norm, rows, hidden, eps, *ws_.x);
  for (int32_t i = 0; i < c.num_layers; ++i) {
    Layer& l = layers_[i];
    const LinearPart qkv[] = {{l.q.get(), l.q_bias.get(), q_width, ws_.q.get()},
                              {l.k.get(), l.k_bias.get(), kv_width, ws_.k.get()},
                              {l.v.get(), l.v_bias.get(), kv_width, ws_.v.get()}};
    d.LinearGroup(*ws_.x, qkv, rows, hidden);
    d.RopeKvWrite(*ws_.q, *ws_.k, *ws_.v, c.num_heads, c.num_kv_heads, rope_, kv_width,
                  *l.k_cache, *l.v_cache);
    d.Attention(*ws_.q, *l.k_cache, *l.v_cache, attention_, *ws_.attn);
    ProjectAddNorm(*ws_.attn, *l.o, l.o_bias.get(), rows, q_width, *l.post_norm);
    d.SwiGlu(*ws_.x, {l.gate.get(), l.gate_bias.get(), inter, ws_.gate.get()},
             {l.up.get(), l.up_bias.get(), inter, ws_.up.get()}, rows, hidden, *ws_.act);
    if (i + 1 < c.num_layers) {
      ProjectAddNorm(*ws_.act, *l.down, l.down_bias.get(), rows, inter,
                     *layers_[i + 1].input_norm);
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
  d.AddRmsNorm(*ws_.sel, *ws_.x, *final_norm_, out_rows, hidden, eps, *ws_.sel_norm);
  const Buffer& head = lm_head_ ? *lm_head_ : *embed_;
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
                                   std::vector<int32_t>& tokens, std::vector<float>& logprobs) {
  int32_t out_rows = 0;
  RETURN_IF_ERROR(Run(batch, out_rows));
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

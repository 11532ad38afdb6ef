#include "backends/llm/model/decoder_weights.h"

#include <string>
#include <utility>

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
                           ShapeString(scales->shape) + ", expected " + ShapeString({groups, out}));
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

// Loads one model's weights: the checks and this rank's slices (LoadDecoderWeights).
class WeightLoader {
 public:
  WeightLoader(const WeightStore& store, const HfModelConfig& c, const TpLayout& t, Device& device)
      : store_(store),
        c_(c),
        t_(t),
        device_(device),
        sharded_(t.size > 1),
        hidden_(c.hidden_size),
        inter_(c.intermediate_size),
        q_width_(int64_t{c.num_heads} * c.head_dim),
        kv_width_(int64_t{c.num_kv_heads} * c.head_dim),
        q0_(t.q_head_first * int64_t{c.head_dim}),
        qn_(t.q_heads * int64_t{c.head_dim}),
        kv0_(t.kv_head_first * int64_t{c.head_dim}),
        kvn_(t.kv_heads * int64_t{c.head_dim}) {}

  Status LoadAll(DecoderWeights& w);

 private:
  // Finds tensor `name`, checks that it has exactly `shape` and a float dtype.
  Result<WeightSource> Source(const std::string& name, std::vector<int64_t> shape) const;
  Status Put(const WeightSource& w, std::unique_ptr<Buffer>& out);
  Status Load(const std::string& name, std::vector<int64_t> shape, std::unique_ptr<Buffer>& out);
  // Weights read by one LinearGroup, loaded together (a device may place them back to back).
  Status PutGroup(std::vector<WeightSource> parts, std::vector<std::unique_ptr<Buffer>*> outs);
  // A GPTQ checkpoint's q, k, v, o, gate, up and down: each linear on its own.
  Status LoadGptq(const std::string& prefix, int64_t out, int64_t in, std::unique_ptr<Buffer>& dst);
  Status LoadGptqLinears(const std::string& p, DecoderLayerWeights& l);
  Status LoadDenseLinears(const std::string& p, DecoderLayerWeights& l);
  Status LoadBiases(const std::string& p, DecoderLayerWeights& l);
  // This rank's part (tensor_parallel.h): output rows of column-parallel weights (and their
  // biases), input columns of row-parallel ones; row-parallel biases are added by rank 0 only.
  WeightSource OutRows(const WeightSource& w, int64_t cols, int64_t first, int64_t count) const {
    return sharded_ ? SliceRows(w, cols, first, count) : w;
  }
  WeightSource InCols(const WeightSource& w, int64_t rows, int64_t cols, int64_t first,
                      int64_t count) const {
    return sharded_ ? SliceColumns(w, rows, cols, first, count) : w;
  }

  const WeightStore& store_;
  const HfModelConfig& c_;  // the checkpoint's shapes; slices per t_
  const TpLayout& t_;
  Device& device_;
  const bool sharded_;
  const int64_t hidden_, inter_, q_width_, kv_width_;
  const int64_t q0_, qn_, kv0_, kvn_;  // this rank's q and k|v output rows
};

Result<WeightSource> WeightLoader::Source(const std::string& name,
                                          std::vector<int64_t> shape) const {
  const SafetensorsFile* file = nullptr;
  const SafeTensor* t = store_.Find(name, &file);
  if (t == nullptr) return InvalidArgument("model weights: tensor '" + name + "' is missing");
  if (t->shape != shape) {
    return InvalidArgument(file->name() + ": tensor '" + name + "' has shape " +
                           ShapeString(t->shape) + ", expected " + ShapeString(shape));
  }
  ASSIGN_OR_RETURN(DType dtype, WeightDType(*t, file->name()));
  return WeightSource{dtype, t->data, t->elements, file->mapping()};
}

Status WeightLoader::Put(const WeightSource& w, std::unique_ptr<Buffer>& out) {
  ASSIGN_OR_RETURN(out, device_.LoadWeight(w.dtype, w.host, w.elements, w.keep_alive));
  return Status::Ok();
}

Status WeightLoader::Load(const std::string& name, std::vector<int64_t> shape,
                          std::unique_ptr<Buffer>& out) {
  ASSIGN_OR_RETURN(WeightSource w, Source(name, std::move(shape)));
  return Put(w, out);
}

Status WeightLoader::PutGroup(std::vector<WeightSource> parts,
                              std::vector<std::unique_ptr<Buffer>*> outs) {
  ASSIGN_OR_RETURN(auto buffers, device_.LoadWeightGroup(parts));
  if (buffers.size() != outs.size()) return Internal("device loaded a wrong number of weights");
  for (size_t i = 0; i < outs.size(); ++i) *outs[i] = std::move(buffers[i]);
  return Status::Ok();
}

Status WeightLoader::LoadGptq(const std::string& prefix, int64_t out, int64_t in,
                              std::unique_ptr<Buffer>& dst) {
  ASSIGN_OR_RETURN(GptqWeightSource w, GptqSource(store_, *c_.gptq, prefix, out, in));
  Result<std::unique_ptr<Buffer>> buffer = device_.LoadGptqWeight(w);
  if (!buffer.ok()) {
    return Status(buffer.status().code(),
                  "model weights: '" + prefix + "': " + buffer.status().message());
  }
  dst = std::move(*buffer);
  return Status::Ok();
}

Status WeightLoader::LoadGptqLinears(const std::string& p, DecoderLayerWeights& l) {
  RETURN_IF_ERROR(LoadGptq(p + "self_attn.q_proj", q_width_, hidden_, l.q));
  RETURN_IF_ERROR(LoadGptq(p + "self_attn.k_proj", kv_width_, hidden_, l.k));
  RETURN_IF_ERROR(LoadGptq(p + "self_attn.v_proj", kv_width_, hidden_, l.v));
  RETURN_IF_ERROR(LoadGptq(p + "self_attn.o_proj", hidden_, q_width_, l.o));
  RETURN_IF_ERROR(LoadGptq(p + "mlp.gate_proj", inter_, hidden_, l.gate));
  RETURN_IF_ERROR(LoadGptq(p + "mlp.up_proj", inter_, hidden_, l.up));
  return LoadGptq(p + "mlp.down_proj", hidden_, inter_, l.down);
}

Status WeightLoader::LoadDenseLinears(const std::string& p, DecoderLayerWeights& l) {
  ASSIGN_OR_RETURN(WeightSource q, Source(p + "self_attn.q_proj.weight", {q_width_, hidden_}));
  ASSIGN_OR_RETURN(WeightSource k, Source(p + "self_attn.k_proj.weight", {kv_width_, hidden_}));
  ASSIGN_OR_RETURN(WeightSource v, Source(p + "self_attn.v_proj.weight", {kv_width_, hidden_}));
  RETURN_IF_ERROR(PutGroup({OutRows(q, hidden_, q0_, qn_), OutRows(k, hidden_, kv0_, kvn_),
                            OutRows(v, hidden_, kv0_, kvn_)},
                           {&l.q, &l.k, &l.v}));
  ASSIGN_OR_RETURN(WeightSource o, Source(p + "self_attn.o_proj.weight", {hidden_, q_width_}));
  RETURN_IF_ERROR(Put(InCols(o, hidden_, q_width_, q0_, qn_), l.o));
  ASSIGN_OR_RETURN(WeightSource gate, Source(p + "mlp.gate_proj.weight", {inter_, hidden_}));
  ASSIGN_OR_RETURN(WeightSource up, Source(p + "mlp.up_proj.weight", {inter_, hidden_}));
  RETURN_IF_ERROR(PutGroup({OutRows(gate, hidden_, t_.inter_first, t_.inter),
                            OutRows(up, hidden_, t_.inter_first, t_.inter)},
                           {&l.gate, &l.up}));
  ASSIGN_OR_RETURN(WeightSource down, Source(p + "mlp.down_proj.weight", {hidden_, inter_}));
  return Put(InCols(down, hidden_, inter_, t_.inter_first, t_.inter), l.down);
}

Status WeightLoader::LoadBiases(const std::string& p, DecoderLayerWeights& l) {
  if (c_.qkv_bias) {
    ASSIGN_OR_RETURN(WeightSource qb, Source(p + "self_attn.q_proj.bias", {q_width_}));
    ASSIGN_OR_RETURN(WeightSource kb, Source(p + "self_attn.k_proj.bias", {kv_width_}));
    ASSIGN_OR_RETURN(WeightSource vb, Source(p + "self_attn.v_proj.bias", {kv_width_}));
    RETURN_IF_ERROR(Put(OutRows(qb, 1, q0_, qn_), l.q_bias));
    RETURN_IF_ERROR(Put(OutRows(kb, 1, kv0_, kvn_), l.k_bias));
    RETURN_IF_ERROR(Put(OutRows(vb, 1, kv0_, kvn_), l.v_bias));
  }
  if (c_.o_bias) {
    ASSIGN_OR_RETURN(WeightSource ob, Source(p + "self_attn.o_proj.bias", {hidden_}));
    if (t_.rank == 0) RETURN_IF_ERROR(Put(ob, l.o_bias));
  }
  if (c_.mlp_bias) {
    ASSIGN_OR_RETURN(WeightSource gb, Source(p + "mlp.gate_proj.bias", {inter_}));
    ASSIGN_OR_RETURN(WeightSource ub, Source(p + "mlp.up_proj.bias", {inter_}));
    ASSIGN_OR_RETURN(WeightSource db, Source(p + "mlp.down_proj.bias", {hidden_}));
    RETURN_IF_ERROR(Put(OutRows(gb, 1, t_.inter_first, t_.inter), l.gate_bias));
    RETURN_IF_ERROR(Put(OutRows(ub, 1, t_.inter_first, t_.inter), l.up_bias));
    if (t_.rank == 0) RETURN_IF_ERROR(Put(db, l.down_bias));
  }
  return Status::Ok();
}

Status WeightLoader::LoadAll(DecoderWeights& w) {
  if (c_.gptq && sharded_) {
    return Unsupported("tensor parallelism over GPTQ weights is not supported");
  }
  RETURN_IF_ERROR(Load("model.embed_tokens.weight", {c_.vocab_size, hidden_}, w.embed));
  RETURN_IF_ERROR(Load("model.norm.weight", {hidden_}, w.final_norm));
  if (!c_.tie_word_embeddings) {
    RETURN_IF_ERROR(Load("lm_head.weight", {c_.vocab_size, hidden_}, w.lm_head));
  }
  w.layers.resize(c_.num_layers);
  for (int32_t i = 0; i < c_.num_layers; ++i) {
    DecoderLayerWeights& l = w.layers[i];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    RETURN_IF_ERROR(Load(p + "input_layernorm.weight", {hidden_}, l.input_norm));
    RETURN_IF_ERROR(Load(p + "post_attention_layernorm.weight", {hidden_}, l.post_norm));
    RETURN_IF_ERROR(c_.gptq ? LoadGptqLinears(p, l) : LoadDenseLinears(p, l));
    RETURN_IF_ERROR(LoadBiases(p, l));
  }
  return Status::Ok();
}

}  // namespace

Result<DecoderWeights> LoadDecoderWeights(const WeightStore& store, const HfModelConfig& config,
                                          const TpLayout& tp, Device& device) {
  DecoderWeights weights;
  RETURN_IF_ERROR(WeightLoader(store, config, tp, device).LoadAll(weights));
  return weights;
}

}  // namespace sluice::llm

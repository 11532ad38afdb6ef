#pragma once
// A decoder's weights on a device (DecoderModel): read from a Hugging Face folder's
// safetensors, each tensor's presence, dtype and shape checked against the checkpoint's
// config, and this tensor-parallel rank's share sliced out (tensor_parallel.h). Dense q|k|v
// and gate|up are loaded as groups (Device::LoadWeightGroup: a device may place them back
// to back for one fused product); GPTQ checkpoints' linears stay quantized
// (Device::LoadGptqWeight).

#include <memory>
#include <vector>

#include "backends/llm/device/ops.h"
#include "backends/llm/model/hf_config.h"
#include "backends/llm/model/tensor_parallel.h"
#include "backends/llm/model/weight_store.h"
#include "common/status.h"

namespace sluice::llm {

struct DecoderLayerWeights {
  std::unique_ptr<Buffer> input_norm, post_norm;
  std::unique_ptr<Buffer> q, k, v, o, q_bias, k_bias, v_bias, o_bias;
  std::unique_ptr<Buffer> gate, up, down, gate_bias, up_bias, down_bias;
};

struct DecoderWeights {
  std::unique_ptr<Buffer> embed, final_norm, lm_head;  // lm_head null when tied
  std::vector<DecoderLayerWeights> layers;
};

// Loads every weight of `store` onto `device`. `config` is the checkpoint's (the whole
// model's) config, `tp` this rank's share. Errors name the tensor and its file:
// InvalidArgument for a missing tensor, a wrong shape or dtype; Unsupported for tensor
// parallelism over GPTQ weights.
Result<DecoderWeights> LoadDecoderWeights(const WeightStore& store, const HfModelConfig& config,
                                          const TpLayout& tp, Device& device);

}  // namespace sluice::llm

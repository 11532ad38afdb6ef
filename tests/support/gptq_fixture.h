#pragma once
// Test helper (unit and integration tests): writes GPTQ checkpoints the way AutoGPTQ's
// QuantLinear.pack lays them out, independently of Sluice's loader: qweight [in / (32 /
// bits), out] with input rows packed lowest bits first, qzeros [groups, out / (32 / bits)]
// packed along the output, fp16 scales, g_idx; the v1 "gptq" format stores zero - 1.
// WriteGptqTwins turns a float model folder into a GPTQ folder and a "dequantized twin"
// whose linear weights are exactly what the GPTQ folder means, in fp32.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/llm/device/cpu/half.h"
#include "backends/llm/device/ops.h"
#include "backends/llm/device/cpu/linear_kernel.h"
#include "backends/llm/model/safetensors.h"
#include "common/status.h"

namespace sluice::llm::testing {

struct QuantSpec {
  int bits = 4;
  int group_size = 128;  // -1: one group
  bool desc_act = false;
  bool v2 = false;  // zeros stored as they are
};

// A linear layer W [out, in] (Hugging Face layout) quantized GPTQ-style by rounding.
struct Quantized {
  int32_t in = 0, out = 0, groups = 0;
  std::vector<int32_t> qweight;  // [in / pack, out]
  std::vector<int32_t> qzeros;   // [groups, out / pack]
  std::vector<uint16_t> scales;  // fp16 [groups, out]
  std::vector<int32_t> g_idx;    // [in]
  std::vector<double> dequant;   // [out, in]: what the checkpoint means
};

inline Quantized Quantize(const std::vector<float>& w, int32_t out, int32_t in,
                          const QuantSpec& spec, std::mt19937_64& rng) {
  Quantized q;
  q.in = in;
  q.out = out;
  const int pack = 32 / spec.bits;
  const int levels = (1 << spec.bits) - 1;
  const int32_t gs = spec.group_size < 0 ? in : spec.group_size;
  q.groups = (in + gs - 1) / gs;
  // Act-order: rows are grouped in a shuffled order, so g_idx is no longer i / group_size.
  std::vector<int32_t> order(in);
  std::iota(order.begin(), order.end(), 0);
  if (spec.desc_act) std::shuffle(order.begin(), order.end(), rng);
  q.g_idx.resize(in);
  for (int32_t r = 0; r < in; ++r) q.g_idx[order[r]] = r / gs;

  std::vector<int32_t> iq(static_cast<size_t>(in) * out);  // [in, out]
  std::vector<int32_t> zeros(static_cast<size_t>(q.groups) * out);
  q.scales.resize(static_cast<size_t>(q.groups) * out);
  q.dequant.resize(static_cast<size_t>(out) * in);
  for (int32_t j = 0; j < out; ++j) {
    for (int32_t g = 0; g < q.groups; ++g) {
      float lo = 0, hi = 0;
      for (int32_t i = 0; i < in; ++i) {
        if (q.g_idx[i] != g) continue;
        lo = std::min(lo, w[static_cast<size_t>(j) * in + i]);
        hi = std::max(hi, w[static_cast<size_t>(j) * in + i]);
      }
      const uint16_t scale16 = F32ToF16(std::max(hi - lo, 1e-6f) / static_cast<float>(levels));
      const double scale = F16ToF32(scale16);
      // v1 cannot store a zero point of 0 (it stores zero - 1).
      const int zero = std::clamp(static_cast<int>(std::lround(-lo / scale)), spec.v2 ? 0 : 1,
                                  levels);
      q.scales[static_cast<size_t>(g) * out + j] = scale16;
      zeros[static_cast<size_t>(g) * out + j] = zero;
      for (int32_t i = 0; i < in; ++i) {
        if (q.g_idx[i] != g) continue;
        const int v = std::clamp(
            static_cast<int>(std::lround(w[static_cast<size_t>(j) * in + i] / scale)) + zero, 0,
            levels);
        iq[static_cast<size_t>(i) * out + j] = v;
        q.dequant[static_cast<size_t>(j) * in + i] = scale * (v - zero);
      }
    }
  }
  q.qweight.assign(static_cast<size_t>(in / pack) * out, 0);
  for (int32_t i = 0; i < in; ++i) {
    for (int32_t j = 0; j < out; ++j) {
      auto& word = reinterpret_cast<uint32_t&>(q.qweight[static_cast<size_t>(i / pack) * out + j]);
      const auto v = static_cast<uint32_t>(iq[static_cast<size_t>(i) * out + j]);
      word |= v << (spec.bits * (i % pack));
    }
  }
  q.qzeros.assign(static_cast<size_t>(q.groups) * (out / pack), 0);
  for (int32_t g = 0; g < q.groups; ++g) {
    for (int32_t j = 0; j < out; ++j) {
      const int stored = zeros[static_cast<size_t>(g) * out + j] - (spec.v2 ? 0 : 1);
      auto& word =
          reinterpret_cast<uint32_t&>(q.qzeros[static_cast<size_t>(g) * (out / pack) + j / pack]);
      word |= static_cast<uint32_t>(stored) << (spec.bits * (j % pack));
    }
  }
  return q;
}

// Writes a safetensors file: u64 LE header length, the JSON header, the data.
class SafetensorsWriter {
 public:
  void Add(const std::string& name, const char* dtype, std::vector<int64_t> shape,
           const void* data, size_t bytes) {
    header_[name] = {{"dtype", dtype},
                     {"shape", shape},
                     {"data_offsets", {data_.size(), data_.size() + bytes}}};
    data_.append(static_cast<const char*>(data), bytes);
  }
  void Write(const std::filesystem::path& path) const {
    std::string header = header_.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    const uint64_t n = header.size();
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header << data_;
  }

 private:
  nlohmann::json header_ = nlohmann::json::object();
  std::string data_;
};

// The device-facing view of a quantized weight (borrows `q`'s arrays).
inline GptqWeightSource SourceOf(const Quantized& q, const QuantSpec& spec) {
  GptqWeightSource s;
  s.bits = spec.bits;
  s.in = q.in;
  s.out = q.out;
  s.groups = q.groups;
  s.zero_offset = spec.v2 ? 0 : 1;
  s.qweight = q.qweight.data();
  s.qzeros = q.qzeros.data();
  s.scales_dtype = DType::kF16;
  s.scales = q.scales.data();
  s.group_size = spec.group_size;
  s.g_idx = q.g_idx.data();
  return s;
}

// n values drawn from N(0, scale^2).
inline std::vector<float> RandomNormal(std::mt19937_64& rng, size_t n, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Copies `src` (config.json, generation and tokenizer files, model.safetensors) to `gptq`
// with every q/k/v/o/gate/up/down weight GPTQ-quantized (quantization_config added) and to
// `dequant` with those weights replaced by their dequantized values (fp32). `leave_out`
// names a tensor not to write to the GPTQ folder.
inline Status WriteGptqTwins(const std::filesystem::path& src, const std::filesystem::path& gptq,
                             const std::filesystem::path& dequant, const QuantSpec& spec,
                             uint64_t seed, const std::string& leave_out = "") {
  namespace fs = std::filesystem;
  fs::create_directories(gptq);
  fs::create_directories(dequant);
  std::ifstream in(src / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  nlohmann::json qc = {{"quant_method", "gptq"}, {"bits", spec.bits},
                       {"group_size", spec.group_size}, {"desc_act", spec.desc_act},
                       {"sym", false}};
  if (spec.v2) qc["checkpoint_format"] = "gptq_v2";
  nlohmann::json gptq_config = config;
  gptq_config["quantization_config"] = qc;
  std::ofstream(gptq / "config.json") << gptq_config.dump(2);
  std::ofstream(dequant / "config.json") << config.dump(2);
  for (const char* f : {"generation_config.json", "tokenizer.json", "tokenizer_config.json"}) {
    if (!fs::exists(src / f)) continue;
    fs::copy_file(src / f, gptq / f, fs::copy_options::overwrite_existing);
    fs::copy_file(src / f, dequant / f, fs::copy_options::overwrite_existing);
  }
  ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(src / "model.safetensors"));
  std::mt19937_64 rng(seed);
  SafetensorsWriter q_out, d_out;
  const std::string linears[] = {".self_attn.q_proj.weight", ".self_attn.k_proj.weight",
                                 ".self_attn.v_proj.weight", ".self_attn.o_proj.weight",
                                 ".mlp.gate_proj.weight",    ".mlp.up_proj.weight",
                                 ".mlp.down_proj.weight"};
  for (const SafeTensor& t : file->tensors()) {
    const bool linear = std::any_of(std::begin(linears), std::end(linears),
                                    [&](const std::string& l) { return t.name.ends_with(l); });
    if (!linear) {
      const std::string dtype(StDTypeName(t.dtype));
      q_out.Add(t.name, dtype.c_str(), t.shape, t.data, t.bytes);
      d_out.Add(t.name, dtype.c_str(), t.shape, t.data, t.bytes);
      continue;
    }
    DType dtype = DType::kF32;
    if (t.dtype == StDType::kBF16) dtype = DType::kBF16;
    if (t.dtype == StDType::kF16) dtype = DType::kF16;
    std::vector<std::byte> raw(t.bytes);
    std::memcpy(raw.data(), t.data, t.bytes);
    std::vector<float> w(t.elements);
    WeightsToF32(dtype, raw.data(), 0, t.elements, w.data());
    const int32_t out = static_cast<int32_t>(t.shape[0]), in = static_cast<int32_t>(t.shape[1]);
    const Quantized q = Quantize(w, out, in, spec, rng);
    const int pack = 32 / spec.bits;
    const std::string prefix = t.name.substr(0, t.name.size() - 7);  // without ".weight"
    if (prefix + ".qweight" != leave_out) {
      q_out.Add(prefix + ".qweight", "I32", {in / pack, out}, q.qweight.data(),
                q.qweight.size() * 4);
    }
    q_out.Add(prefix + ".qzeros", "I32", {q.groups, out / pack}, q.qzeros.data(),
              q.qzeros.size() * 4);
    q_out.Add(prefix + ".scales", "F16", {q.groups, out}, q.scales.data(), q.scales.size() * 2);
    q_out.Add(prefix + ".g_idx", "I32", {in}, q.g_idx.data(), q.g_idx.size() * 4);
    const std::vector<float> exact(q.dequant.begin(), q.dequant.end());  // fp16 x small int
    d_out.Add(t.name, "F32", t.shape, exact.data(), exact.size() * 4);
  }
  q_out.Write(gptq / "model.safetensors");
  d_out.Write(dequant / "model.safetensors");
  return Status::Ok();
}

}  // namespace sluice::llm::testing

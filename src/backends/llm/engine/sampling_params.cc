#include "backends/llm/engine/sampling_params.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sluice::llm {
namespace {

std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status Bad(const char* name, const std::string& value, const char* expected) {
  return InvalidArgument(std::string("sampling parameter '") + name + "' = " + value + ": " +
                         expected);
}

Status CheckFinite(const char* name, float v) {
  if (!std::isfinite(v)) return Bad(name, Num(v), "must be a finite number");
  return Status::Ok();
}

}  // namespace

Status SamplingParams::Validate(int32_t vocab_size) const {
  if (n < 1 || n > kMaxN) return Bad("n", std::to_string(n), "must be in [1, 16]");
  RETURN_IF_ERROR(CheckFinite("temperature", temperature));
  if (temperature < 0) return Bad("temperature", Num(temperature), "must be >= 0");
  RETURN_IF_ERROR(CheckFinite("top_p", top_p));
  if (!(top_p > 0 && top_p <= 1)) return Bad("top_p", Num(top_p), "must be in (0, 1]");
  if (top_k < -1) return Bad("top_k", std::to_string(top_k), "must be -1, 0 (disabled) or >= 1");
  RETURN_IF_ERROR(CheckFinite("min_p", min_p));
  if (min_p < 0 || min_p > 1) return Bad("min_p", Num(min_p), "must be in [0, 1]");
  RETURN_IF_ERROR(CheckFinite("repetition_penalty", repetition_penalty));
  if (repetition_penalty <= 0) {
    return Bad("repetition_penalty", Num(repetition_penalty), "must be > 0");
  }
  RETURN_IF_ERROR(CheckFinite("presence_penalty", presence_penalty));
  if (presence_penalty < -2 || presence_penalty > 2) {
    return Bad("presence_penalty", Num(presence_penalty), "must be in [-2, 2]");
  }
  RETURN_IF_ERROR(CheckFinite("frequency_penalty", frequency_penalty));
  if (frequency_penalty < -2 || frequency_penalty > 2) {
    return Bad("frequency_penalty", Num(frequency_penalty), "must be in [-2, 2]");
  }
  if (max_tokens.has_value() && *max_tokens < 1) {
    return Bad("max_tokens", std::to_string(*max_tokens), "must be >= 1");
  }
  if (min_tokens < 0) return Bad("min_tokens", std::to_string(min_tokens), "must be >= 0");
  if (max_tokens.has_value() && min_tokens > *max_tokens) {
    return Bad("min_tokens", std::to_string(min_tokens),
               ("must be <= max_tokens (" + std::to_string(*max_tokens) + ")").c_str());
  }
  if (logprobs.has_value() && (*logprobs < 0 || *logprobs > kMaxLogprobs)) {
    return Bad("logprobs", std::to_string(*logprobs), "must be in [0, 20]");
  }
  if (stop.size() > kMaxStopStrings) {
    return Bad("stop", std::to_string(stop.size()) + " strings", "at most 64 stop strings");
  }
  for (const std::string& s : stop) {
    if (s.empty()) return Bad("stop", "\"\"", "stop strings must not be empty");
    if (s.size() > kMaxStopStringBytes) {
      return Bad("stop", std::to_string(s.size()) + " bytes", "a stop string has at most 1024 bytes");
    }
  }
  if (stop_token_ids.size() > kMaxStopTokenIds) {
    return Bad("stop_token_ids", std::to_string(stop_token_ids.size()) + " ids", "at most 1024 ids");
  }
  for (int32_t id : stop_token_ids) {
    if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
      return Bad("stop_token_ids", std::to_string(id),
                 ("must be a token id in [0, " + std::to_string(vocab_size) + ")").c_str());
    }
  }
  if (logit_bias.size() > kMaxLogitBias) {
    return Bad("logit_bias", std::to_string(logit_bias.size()) + " tokens", "at most 1024 tokens");
  }
  std::vector<int32_t> ids;
  for (const auto& [id, bias] : logit_bias) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
    return Bad("logit_bias", std::to_string(*std::adjacent_find(ids.begin(), ids.end())),
               "a token appears twice");
  }
  for (const auto& [id, bias] : logit_bias) {
    if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
      return Bad("logit_bias", std::to_string(id),
                 ("must be a token id in [0, " + std::to_string(vocab_size) + ")").c_str());
    }
    if (!(std::fabs(bias) <= kMaxAbsLogitBias)) {
      return Bad("logit_bias", Num(bias), "biases must be in [-100, 100]");
    }
  }
  return Status::Ok();
}

}  // namespace sluice::llm

#include "common/llm_contract.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace sluice::llm_contract {
namespace {

// Shortest text that reads back as `v` ("2", "0.5", "1e-06").
std::string Num(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  std::string s = os.str();
  std::ostringstream shortest;
  shortest << v;
  return std::stod(shortest.str()) == v ? shortest.str() : s;
}

std::string Quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

Status Bad(std::string_view field, const std::string& what) {
  return InvalidArgument(Quoted(field) + " " + what);
}

Status CheckTokenIdList(std::string_view field, std::span<const int32_t> ids, size_t cap) {
  if (ids.size() > cap)
    return Bad(field,
               "holds " + std::to_string(ids.size()) + " ids, more than " + std::to_string(cap));
  for (int32_t id : ids)
    if (id < 0) return Bad(field, "holds " + std::to_string(id) + ", not a token id");
  return Status::Ok();
}

Status CheckStop(const std::vector<std::string>& stop) {
  if (stop.size() > kMaxStopStrings)
    return Bad("stop", "holds " + std::to_string(stop.size()) + " strings, more than " +
                           std::to_string(kMaxStopStrings));
  for (const std::string& s : stop) {
    if (s.empty()) return Bad("stop", "strings must not be empty");
    if (s.size() > kMaxStopStringBytes)
      return Bad("stop", "strings have at most " + std::to_string(kMaxStopStringBytes) +
                             " bytes, got " + std::to_string(s.size()));
  }
  return Status::Ok();
}

Status CheckLogitBias(const std::vector<std::pair<int32_t, double>>& bias) {
  if (bias.size() > kMaxLogitBias)
    return Bad("logit_bias", "holds " + std::to_string(bias.size()) + " tokens, more than " +
                                 std::to_string(kMaxLogitBias));
  std::vector<int32_t> ids;
  for (const auto& [id, b] : bias) {
    if (id < 0) return Bad("logit_bias", "keys must be token ids, got " + std::to_string(id));
    if (!(std::fabs(b) <= kMaxAbsLogitBias))
      return Bad("logit_bias", "biases must be numbers between -100 and 100");
    ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  auto twice = std::adjacent_find(ids.begin(), ids.end());
  if (twice != ids.end())
    return Bad("logit_bias", "names token " + std::to_string(*twice) + " twice");
  return Status::Ok();
}

}  // namespace

const SamplingRange* FindSamplingRange(std::string_view name) {
  for (const SamplingRange& r : kSamplingRanges)
    if (r.name == name) return &r;
  return nullptr;
}

Status CheckSamplingRange(std::string_view name, double value, Surface surface,
                          std::string_view field) {
  const SamplingRange* r = FindSamplingRange(name);
  if (r == nullptr) return Internal("no sampling range for '" + std::string(name) + "'");
  const double max = surface == Surface::kOpenAI ? r->openai_max : r->max;
  const bool above_min = r->min_exclusive ? value > r->min : value >= r->min;
  if (std::isfinite(value) && above_min && value <= max) return Status::Ok();
  const std::string what = field.empty() ? std::string(name) : std::string(field);
  const std::string got =
      std::isfinite(value) ? Num(value) : std::string("a value that is not finite");
  if (max == kUnbounded)
    return Bad(what, "must be " + std::string(r->min_exclusive ? "greater than " : "at least ") +
                         Num(r->min) + ", got " + got);
  if (r->min_exclusive)
    return Bad(what, "must be in (" + Num(r->min) + ", " + Num(max) + "], got " + got);
  return Bad(what, "must be between " + Num(r->min) + " and " + Num(max) + ", got " + got);
}

Status ValidateSampling(const SamplingParameters& p, Surface surface) {
  RETURN_IF_ERROR(CheckSamplingRange("n", p.n, surface));
  RETURN_IF_ERROR(CheckSamplingRange("temperature", p.temperature, surface));
  RETURN_IF_ERROR(CheckSamplingRange("top_p", p.top_p, surface));
  RETURN_IF_ERROR(CheckSamplingRange("top_k", p.top_k, surface));
  RETURN_IF_ERROR(CheckSamplingRange("min_p", p.min_p, surface));
  RETURN_IF_ERROR(CheckSamplingRange("repetition_penalty", p.repetition_penalty, surface));
  RETURN_IF_ERROR(CheckSamplingRange("presence_penalty", p.presence_penalty, surface));
  RETURN_IF_ERROR(CheckSamplingRange("frequency_penalty", p.frequency_penalty, surface));
  if (p.max_tokens) RETURN_IF_ERROR(CheckSamplingRange("max_tokens", *p.max_tokens, surface));
  RETURN_IF_ERROR(CheckSamplingRange("min_tokens", p.min_tokens, surface));
  if (p.max_tokens && p.min_tokens > *p.max_tokens)
    return Bad("min_tokens", "must be at most max_tokens (" + std::to_string(*p.max_tokens) +
                                 "), got " + std::to_string(p.min_tokens));
  if (p.logprobs) RETURN_IF_ERROR(CheckSamplingRange("logprobs", *p.logprobs, surface));
  RETURN_IF_ERROR(CheckStop(p.stop));
  RETURN_IF_ERROR(CheckTokenIdList("stop_token_ids", p.stop_token_ids, kMaxStopTokenIds));
  if (p.structured_output && p.structured_output->text.size() > kMaxStructuredOutputBytes)
    return InvalidArgument("the structured-output constraint has " +
                           std::to_string(p.structured_output->text.size()) + " bytes, more than " +
                           std::to_string(kMaxStructuredOutputBytes));
  return CheckLogitBias(p.logit_bias);
}

Status CheckBestOf(int64_t best_of, int32_t n) {
  RETURN_IF_ERROR(CheckSamplingRange("best_of", static_cast<double>(best_of), Surface::kTriton));
  if (best_of < n) return Bad("best_of", "must be at least 'n'");
  // Every sample drawn is returned (best_of = n); more would need the best n by cumulative
  // logprob, which Sluice does not do.
  if (best_of > n) return Unsupported("'best_of' greater than 'n' is not supported");
  return Status::Ok();
}

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kToolCalls:
      return "tool_calls";
  }
  return "";
}

}  // namespace sluice::llm_contract

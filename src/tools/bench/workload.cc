#include "tools/bench/workload.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <numbers>
#include <random>
#include <sstream>

namespace sluice::bench {

namespace {

constexpr size_t kMaxLineBytes = 1u << 20;
constexpr int64_t kMaxLength = 1 << 20;  // tokens; far above any context window

double Uniform01(uint64_t& state) {
  std::mt19937_64 rng(state);
  state = rng();
  return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
}

}  // namespace

Result<LengthDistribution> ParseLengthDistribution(std::string_view name) {
  if (name == "fixed") return LengthDistribution::kFixed;
  if (name == "uniform") return LengthDistribution::kUniform;
  if (name == "normal") return LengthDistribution::kNormal;
  return InvalidArgument("length distribution '" + std::string(name) +
                         "': expected fixed, uniform or normal");
}

int64_t DrawLength(int64_t mean, const SyntheticSpec& spec, uint64_t& state) {
  double value = static_cast<double>(mean);
  switch (spec.distribution) {
    case LengthDistribution::kFixed:
      break;
    case LengthDistribution::kUniform: {
      double lo = std::round(value * (1.0 - spec.range_ratio));
      double hi = std::round(value * (1.0 + spec.range_ratio));
      value = std::floor(lo + Uniform01(state) * (hi - lo + 1.0));
      value = std::min(value, hi);
      break;
    }
    case LengthDistribution::kNormal: {
      // Box-Muller on two uniforms from the same state.
      double u1 = std::max(Uniform01(state), 1e-12);
      double u2 = Uniform01(state);
      double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
      value = std::round(value + z * value * spec.stddev_ratio);
      break;
    }
  }
  return std::clamp<int64_t>(static_cast<int64_t>(value), 1, kMaxLength);
}

const std::vector<std::string>& DefaultWords() {
  // Common English words, each a single token in typical byte-level BPE vocabularies.
  static const std::vector<std::string> kWords = [] {
    std::istringstream in(
        "the of and to in is was for on that with as by at from his it an were are which "
        "this be has or had first one their its new after who they have her she two been "
        "other when there all during into school time may years more most only over city "
        "some world would where later up such used many can state about national out known "
        "university united then made also between both through film under well life since "
        "back three people part best year high long house game home team water light story "
        "music war book place court work river great early family small name line road old "
        "way day side land end town area night group party field power point every open "
        "short short market voice letter morning garden window summer winter table money "
        "color south north east west paper sound train plant animal ocean island forest");
    std::vector<std::string> words;
    std::string w;
    while (in >> w) words.push_back(w);
    return words;
  }();
  return kWords;
}

Result<std::vector<BenchRequest>> MakeSyntheticRequests(const SyntheticSpec& spec, size_t count) {
  if (spec.input_len < 1 || spec.output_len < 1 || spec.input_len > kMaxLength ||
      spec.output_len > kMaxLength) {
    return InvalidArgument("input and output lengths must be in [1, " +
                           std::to_string(kMaxLength) + "]");
  }
  if (spec.range_ratio < 0 || spec.range_ratio >= 1) {
    return InvalidArgument("range ratio " + std::to_string(spec.range_ratio) +
                           " must be in [0, 1)");
  }
  if (spec.stddev_ratio < 0) return InvalidArgument("stddev ratio must be >= 0");
  const std::vector<std::string>& words = spec.words.empty() ? DefaultWords() : spec.words;
  if (words.empty()) return InvalidArgument("the word list is empty");
  if (spec.shared_prefix_len < 0 || spec.shared_prefix_len > kMaxLength) {
    return InvalidArgument("shared prefix length must be in [0, " + std::to_string(kMaxLength) +
                           "]");
  }
  uint64_t state = spec.seed * 0x9E3779B97F4A7C15ull + 1;
  std::mt19937_64 rng(spec.seed);
  std::string prefix;
  for (int64_t w = 0; w < spec.shared_prefix_len; ++w) {
    prefix += words[rng() % words.size()];
    prefix.push_back(' ');
  }
  std::vector<BenchRequest> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    BenchRequest r;
    const int64_t own = DrawLength(spec.input_len, spec, state);
    r.prompt_tokens = spec.shared_prefix_len + own;
    r.max_tokens = DrawLength(spec.output_len, spec, state);
    r.prompt = prefix;
    for (int64_t w = 0; w < own; ++w) {
      if (w) r.prompt.push_back(' ');
      r.prompt += words[rng() % words.size()];
    }
    out.push_back(std::move(r));
  }
  return out;
}

int64_t CountWords(std::string_view text) {
  int64_t n = 0;
  bool in_word = false;
  for (char c : text) {
    bool space = std::isspace(static_cast<unsigned char>(c));
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

Result<std::vector<BenchRequest>> ParseJsonlRequests(std::string_view text,
                                                     int64_t default_max_tokens,
                                                     size_t max_lines) {
  std::vector<BenchRequest> out;
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (line.size() > kMaxLineBytes) {
      return InvalidArgument("prompts line " + std::to_string(line_no) + " exceeds " +
                             std::to_string(kMaxLineBytes) + " bytes");
    }
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (out.size() >= max_lines) {
      return InvalidArgument("prompts file has more than " + std::to_string(max_lines) +
                             " lines");
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    std::string where = "prompts line " + std::to_string(line_no);
    if (!j.is_object()) return InvalidArgument(where + ": not a JSON object");
    auto prompt = j.find("prompt");
    if (prompt == j.end() || !prompt->is_string()) {
      return InvalidArgument(where + ": missing string 'prompt'");
    }
    BenchRequest r;
    r.prompt = prompt->get<std::string>();
    r.max_tokens = default_max_tokens;
    if (auto mt = j.find("max_tokens"); mt != j.end()) {
      if (!mt->is_number_integer() || mt->get<int64_t>() < 1 || mt->get<int64_t>() > kMaxLength) {
        return InvalidArgument(where + ": 'max_tokens' must be an integer in [1, " +
                               std::to_string(kMaxLength) + "]");
      }
      r.max_tokens = mt->get<int64_t>();
    }
    r.prompt_tokens = CountWords(r.prompt);
    if (auto pt = j.find("prompt_tokens"); pt != j.end() && pt->is_number_integer()) {
      r.prompt_tokens = pt->get<int64_t>();
    }
    out.push_back(std::move(r));
  }
  if (out.empty()) return InvalidArgument("prompts file has no prompts");
  return out;
}

namespace {

Result<std::string> ReadFile(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open '" + path + "'");
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > limit) {
      return InvalidArgument("'" + path + "' exceeds " + std::to_string(limit) + " bytes");
    }
  }
  return text;
}

}  // namespace

Result<std::vector<BenchRequest>> LoadJsonlRequests(const std::string& path,
                                                    int64_t default_max_tokens) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, size_t{1} << 30));
  return ParseJsonlRequests(text, default_max_tokens);
}

Result<std::vector<std::string>> LoadWordList(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, size_t{64} << 20));
  std::istringstream in(text);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) {
    if (words.size() >= 1000000) return InvalidArgument("word list has over 1,000,000 words");
    words.push_back(w);
  }
  if (words.empty()) return InvalidArgument("word list '" + path + "' is empty");
  return words;
}

}  // namespace sluice::bench

#pragma once
// What the benchmark sends: a list of prompts with their approximate token counts and the
// number of tokens to generate. Synthetic prompts are random words from a word list (about
// one token per word for byte-level BPE vocabularies); lengths are fixed, uniform or normal
// around the requested ISL/OSL; or prompts come from a JSONL file of
// {"prompt": "...", "max_tokens": N} lines.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice::bench {

struct BenchRequest {
  std::string prompt;
  int64_t prompt_tokens = 0;  // approximate (words), or from the JSONL file
  int64_t max_tokens = 0;     // output length to ask for (OSL)
};

enum class LengthDistribution { kFixed, kUniform, kNormal };

Result<LengthDistribution> ParseLengthDistribution(std::string_view name);

struct SyntheticSpec {
  int64_t input_len = 128;
  int64_t output_len = 128;
  LengthDistribution distribution = LengthDistribution::kFixed;
  double range_ratio = 0.0;   // uniform: [len*(1-r), len*(1+r)]
  double stddev_ratio = 0.0;  // normal: stddev = len * ratio
  uint64_t seed = 0;
  std::vector<std::string> words;  // empty: the built-in list
  // Words every prompt starts with, the same for all (a shared system prompt, for prefix
  // caching); counted in prompt_tokens beside the input_len words that follow.
  int64_t shared_prefix_len = 0;
};

// Draws one length around `mean` (at least 1).
int64_t DrawLength(int64_t mean, const SyntheticSpec& spec, uint64_t& state);

// `count` requests; every prompt differs after the shared prefix (so prefix caching flatters
// the numbers only where shared_prefix_len asks for it).
Result<std::vector<BenchRequest>> MakeSyntheticRequests(const SyntheticSpec& spec, size_t count);

// Parses JSONL text (one object per non-empty line). `default_max_tokens` is used when a
// line has no max_tokens. Bounded: at most `max_lines` lines of at most 1 MiB each.
Result<std::vector<BenchRequest>> ParseJsonlRequests(std::string_view text,
                                                     int64_t default_max_tokens,
                                                     size_t max_lines = 1000000);
Result<std::vector<BenchRequest>> LoadJsonlRequests(const std::string& path,
                                                    int64_t default_max_tokens);

// Words separated by whitespace in a file (at most 1,000,000 words).
Result<std::vector<std::string>> LoadWordList(const std::string& path);
const std::vector<std::string>& DefaultWords();

// Whitespace-separated words in `text`: the token estimate for prompts without a count.
int64_t CountWords(std::string_view text);

}  // namespace sluice::bench

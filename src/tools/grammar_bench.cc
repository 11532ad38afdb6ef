// sluice-grammar-bench: the cost of constrained decoding on a real vocabulary.
//
//   sluice-grammar-bench --tokenizer DIR [--steps 64] [--rows 1,32,128]
//
// For each built-in case (typical JSON schemas, one with numeric bounds, json_object, a
// regex, a GBNF grammar):
// compile time (text -> grammar -> automaton), the first masks of a fresh grammar (the
// mask cache filling), then per-step FillMask time for 1, 32 and 128 matchers sharing the
// compiled grammar, each walking its own random allowed path (tokens that close structures
// preferred, so documents complete and restart), and the mean Accept time per row (what
// the engine does for a constrained token once it is sampled). Wall clock, one thread.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "backends/llm/structured/compiled_grammar.h"
#include "backends/llm/structured/grammar_matcher.h"
#include "backends/llm/structured/structured_output_spec.h"
#include "backends/llm/structured/vocabulary.h"
#include "backends/llm/tokenizer/tokenizer.h"

namespace {

using namespace sluice::llm::structured;
using Clock = std::chrono::steady_clock;

double Us(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

struct Case {
  const char* name;
  StructuredOutputSpec spec;
};

std::vector<Case> Cases() {
  using K = StructuredOutputSpec::Kind;
  return {
      {"schema-person", {K::kJsonSchema, R"({"type":"object","properties":{"name":{"type":"string"},
        "age":{"type":"integer"},"email":{"type":"string","format":"email"},
        "tags":{"type":"array","items":{"type":"string"},"maxItems":5}},"required":["name","age"],
        "additionalProperties":false})"}},
      {"schema-order", {K::kJsonSchema, R"({"type":"object","properties":{
        "id":{"type":"string","format":"uuid"},"created":{"type":"string","format":"date-time"},
        "status":{"enum":["pending","paid","shipped","cancelled"]},
        "items":{"type":"array","minItems":1,"items":{"type":"object","properties":{
          "sku":{"type":"string","pattern":"[A-Z]{3}-[0-9]{4}"},"qty":{"type":"integer","minimum":0},
          "price":{"type":"number"}},"required":["sku","qty","price"],"additionalProperties":false}},
        "note":{"type":["string","null"]}},"required":["id","created","status","items"],
        "additionalProperties":false})"}},
      {"schema-bounds", {K::kJsonSchema, R"({"type":"object","properties":{
        "age":{"type":"integer","minimum":0,"maximum":150},
        "price":{"type":"number","exclusiveMinimum":0},
        "rating":{"type":"number","minimum":1,"maximum":5},
        "qty":{"type":"integer","minimum":0,"maximum":1000,"multipleOf":5},
        "id":{"type":"integer","minimum":-9223372036854775808,"maximum":9223372036854775807},
        "celsius":{"type":"number","minimum":-273.15,"exclusiveMaximum":1e4}},
        "required":["age","price","rating","qty","id","celsius"],"additionalProperties":false})"}},
      {"schema-tree", {K::kJsonSchema, R"({"$defs":{"node":{"type":"object","properties":{
        "name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
        "required":["name","children"],"additionalProperties":false}},"$ref":"#/$defs/node"})"}},
      {"json_object", {K::kJsonObject, ""}},
      {"regex-phone", {K::kRegex, R"(\(\d{3}\) \d{3}-\d{4})"}},
      {"gbnf-arith",
       {K::kGrammar,
        "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\n"
        "term ::= factor ((\"*\" | \"/\") factor)*\n"
        "factor ::= [0-9]+ | \"(\" expr \")\"\n"}},
  };
}

bool Structural(std::string_view b) {
  return b.find_first_of("\"{}[],:)") != std::string_view::npos;
}

// One case's measurements over a compiled grammar: the matchers walk random allowed paths
// (one rng per case, so each run walks the same paths).
class CaseBench {
 public:
  CaseBench(const Vocabulary& vocab, std::shared_ptr<const CompiledGrammar> compiled, int steps)
      : vocab_(vocab), compiled_(std::move(compiled)), steps_(steps), mask_(vocab.mask_words()) {}

  // One matcher on the fresh grammar: the total and worst FillMask time (us) as the cache fills.
  std::pair<double, double> ColdMasks() {
    double total = 0, worst = 0;
    GrammarMatcher m(compiled_);
    for (int s = 0; s < steps_; ++s) {
      const auto a = Clock::now();
      m.FillMask(mask_);
      const double us = Us(Clock::now() - a);
      total += us;
      worst = std::max(worst, us);
      Advance(m);
    }
    return {total, worst};
  }

  // `rows` matchers at different positions: FillMask time per row and step (us), sorted.
  std::vector<double> RowMasks(int rows) {
    std::vector<std::unique_ptr<GrammarMatcher>> ms;
    for (int r = 0; r < rows; ++r) ms.push_back(std::make_unique<GrammarMatcher>(compiled_));
    // Warm the rows to different positions first.
    for (int r = 0; r < rows; ++r) {
      const int skip = static_cast<int>(rng_() % 16);
      for (int s = 0; s < skip; ++s) Advance(*ms[r]);
    }
    std::vector<double> per_row;
    std::vector<std::vector<uint64_t>> masks(rows, std::vector<uint64_t>(vocab_.mask_words()));
    for (int s = 0; s < steps_; ++s) {
      const auto a = Clock::now();
      for (int r = 0; r < rows; ++r) ms[r]->FillMask(masks[r]);
      per_row.push_back(Us(Clock::now() - a) / rows);
      double accept_us = 0;
      for (int r = 0; r < rows; ++r) accept_us += Advance(*ms[r]);
      accept_per_row_ += accept_us / rows;
      ++accept_steps_;
    }
    std::sort(per_row.begin(), per_row.end());
    return per_row;
  }

 private:
  // A random allowed token (one that closes a structure a third of the time), -1 if none.
  int32_t Pick(GrammarMatcher& m) {
    m.FillMask(mask_);
    std::vector<int32_t> allowed, structural;
    for (int32_t t = 0; t < vocab_.size(); ++t) {
      if (!((mask_[t >> 6] >> (t & 63)) & 1)) continue;
      allowed.push_back(t);
      if (Structural(vocab_.bytes(t))) structural.push_back(t);
    }
    if (allowed.empty()) return -1;
    if (!structural.empty() && rng_() % 3 == 0) return structural[rng_() % structural.size()];
    return allowed[rng_() % allowed.size()];
  }

  // One step along the path; a finished (or stuck) document starts over. Returns the
  // microseconds Accept took (the engine's share of a constrained token after sampling).
  double Advance(GrammarMatcher& m) {
    const int32_t t = Pick(m);
    const auto a = Clock::now();
    const bool accepted = t >= 0 && m.Accept(t);
    const double us = Us(Clock::now() - a);
    if (!accepted || m.IsTerminated()) m.Reset();
    return us;
  }

  const Vocabulary& vocab_;
  std::shared_ptr<const CompiledGrammar> compiled_;
  const int steps_;
  std::vector<uint64_t> mask_;
  std::mt19937_64 rng_{42};

 public:
  // Mean Accept microseconds per row and step over every RowMasks call so far.
  double AcceptPerRow() const { return accept_steps_ > 0 ? accept_per_row_ / accept_steps_ : 0; }

 private:
  double accept_per_row_ = 0;
  int accept_steps_ = 0;
};

// One row of the table: compile time, the cold masks and cache entries, then each row count's
// mean and p50/p99 per row. False when the grammar cannot be compiled for the vocabulary.
bool BenchCase(const Case& c, const std::shared_ptr<const Vocabulary>& vocab, int steps,
               const std::vector<int>& rows_list) {
  const auto c0 = Clock::now();
  auto g = CompileSpec(c.spec);
  if (!g.ok()) {
    std::printf("%s: %s\n", c.name, g.status().ToString().c_str());
    return true;
  }
  auto compiled = CompiledGrammar::Create(*g, vocab);
  if (!compiled.ok()) return false;
  const double compile_ms = Us(Clock::now() - c0) / 1000;
  CaseBench bench(*vocab, *compiled, steps);
  const auto [cold_total, cold_max] = bench.ColdMasks();
  std::printf("%-14s %10.2f %7.1f/%-5.0f %9zu", c.name, compile_ms, cold_total / 1000 / steps,
              cold_max / 1000, (*compiled)->num_mask_entries());
  for (int rows : rows_list) {
    const std::vector<double> per_row = bench.RowMasks(rows);
    double mean = 0;
    for (double v : per_row) mean += v;
    mean /= static_cast<double>(per_row.size());
    std::printf("  %7.1f %7.1f/%-7.1f", mean, per_row[per_row.size() / 2],
                per_row[per_row.size() * 99 / 100]);
  }
  std::printf("  %9.2f\n", bench.AcceptPerRow());
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice grammar engine cost"};
  std::string dir;
  int steps = 64;
  std::vector<int> rows_list = {1, 32, 128};
  app.add_option("--tokenizer", dir, "folder with tokenizer.json")->required();
  app.add_option("--steps", steps, "decode steps measured per row count");
  app.add_option("--rows", rows_list, "matchers per step")->delimiter(',');
  CLI11_PARSE(app, argc, argv);
  auto tok =
      sluice::llm::Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  if (!tok.ok()) {
    std::fprintf(stderr, "%s\n", tok.status().ToString().c_str());
    return 1;
  }
  const auto t0 = Clock::now();
  auto vocab = Vocabulary::FromTokenizer(**tok, {});
  if (!vocab.ok()) return 1;
  std::printf("vocabulary: %d tokens, trie %zu nodes, built in %.1f ms\n", (*vocab)->size(),
              (*vocab)->trie_size(), Us(Clock::now() - t0) / 1000);
  std::printf("%-14s %10s %12s %12s", "case", "compile_ms", "cold_mask_ms", "cache_ent");
  for (int r : rows_list) std::printf("  rows=%-4d us/row p50/p99", r);
  std::printf("  accept_us\n");
  for (const Case& c : Cases()) {
    if (!BenchCase(c, *vocab, steps, rows_list)) return 1;
  }
  return 0;
}

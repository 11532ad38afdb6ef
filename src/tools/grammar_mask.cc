// sluice-grammar-mask: the allowed-token masks of Sluice's grammar engine along token
// paths, for comparisons with a reference engine (tests/python/test_grammar_reference.py).
//
//   sluice-grammar-mask --tokenizer DIR < jobs.jsonl > masks.jsonl
//
// Each input line: {"kind": "json_schema"|"json_object"|"regex"|"choice"|"grammar",
// "text": "...", "tokens": [ids]}. Each output line: {"error": "..."} when the grammar is
// refused, else {"masks": [hex, ...], "accepted": n}: the mask before each token of the
// path and after the last accepted one (bit t of the little-endian 64-bit words = token t
// allowed, EOS included), and how many path tokens the matcher accepted.
// A job with "documents": ["...", ...] instead of tokens asks about whole texts, fed as
// bytes: {"documents": [[prefix, complete], ...]}, whether each is a prefix of a sentence
// of the grammar and whether it is one.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "backends/llm/structured/compiled_grammar.h"
#include "backends/llm/structured/grammar_matcher.h"
#include "backends/llm/structured/structured_output_spec.h"
#include "backends/llm/structured/vocabulary.h"
#include "backends/llm/tokenizer/tokenizer.h"

namespace {

using sluice::llm::structured::StructuredOutputSpec;

bool ParseKind(const std::string& s, StructuredOutputSpec::Kind* kind) {
  using K = StructuredOutputSpec::Kind;
  for (K k : {K::kJsonSchema, K::kJsonObject, K::kRegex, K::kChoice, K::kGrammar}) {
    if (sluice::llm::structured::KindName(k) == s) {
      *kind = k;
      return true;
    }
  }
  return false;
}

sluice::Result<std::shared_ptr<const sluice::llm::structured::CompiledGrammar>> Compile(
    const StructuredOutputSpec& spec,
    std::shared_ptr<const sluice::llm::structured::Vocabulary> vocab) {
  ASSIGN_OR_RETURN(sluice::llm::structured::Grammar g, sluice::llm::structured::CompileSpec(spec));
  return sluice::llm::structured::CompiledGrammar::Create(g, std::move(vocab));
}

std::string Hex(const std::vector<uint64_t>& words) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  out.reserve(words.size() * 16);
  for (uint64_t w : words) {
    for (int i = 60; i >= 0; i -= 4) out.push_back(kDigits[(w >> i) & 15]);
  }
  return out;
}

nlohmann::json Documents(const std::shared_ptr<const sluice::llm::structured::CompiledGrammar>& g,
                         const nlohmann::json& documents) {
  nlohmann::json out = nlohmann::json::array();
  for (const nlohmann::json& d : documents) {
    sluice::llm::structured::GrammarMatcher m(g);
    const std::string text = d.get<std::string>();
    const bool prefix = text.empty() || m.AcceptBytes(text);
    out.push_back({prefix, prefix && m.CanEnd()});
  }
  return out;
}

nlohmann::json Masks(const std::shared_ptr<const sluice::llm::structured::CompiledGrammar>& g,
                     const std::vector<int32_t>& tokens) {
  sluice::llm::structured::GrammarMatcher m(g);
  std::vector<uint64_t> mask(g->vocabulary().mask_words());
  nlohmann::json masks = nlohmann::json::array();
  int accepted = 0;
  for (int32_t t : tokens) {
    m.FillMask(mask);
    masks.push_back(Hex(mask));
    if (!m.Accept(t)) break;
    ++accepted;
  }
  if (accepted == static_cast<int>(tokens.size())) {
    m.FillMask(mask);
    masks.push_back(Hex(mask));
  }
  return {{"masks", std::move(masks)}, {"accepted", accepted}};
}

nlohmann::json RunJob(const nlohmann::json& job,
                      std::shared_ptr<const sluice::llm::structured::Vocabulary> vocab) {
  StructuredOutputSpec spec;
  if (!ParseKind(job.at("kind").get<std::string>(), &spec.kind)) return {{"error", "unknown kind"}};
  spec.text = job.value("text", "");
  auto compiled = Compile(spec, std::move(vocab));
  if (!compiled.ok()) return {{"error", compiled.status().message()}};
  if (job.contains("documents")) return {{"documents", Documents(*compiled, job["documents"])}};
  return Masks(*compiled, job.value("tokens", std::vector<int32_t>{}));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice grammar masks along token paths"};
  std::string dir;
  app.add_option("--tokenizer", dir, "folder with tokenizer.json (and tokenizer_config.json)")
      ->required();
  CLI11_PARSE(app, argc, argv);
  auto tok =
      sluice::llm::Tokenizer::FromFile(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
  if (!tok.ok()) {
    std::cerr << tok.status().ToString() << "\n";
    return 1;
  }
  auto vocab = sluice::llm::structured::Vocabulary::FromTokenizer(**tok, {});
  if (!vocab.ok()) {
    std::cerr << vocab.status().ToString() << "\n";
    return 1;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    nlohmann::json out;
    try {
      out = RunJob(nlohmann::json::parse(line), *vocab);
    } catch (const nlohmann::json::exception& e) {
      out["error"] = std::string("bad job: ") + e.what();
    }
    std::cout << out.dump() << "\n" << std::flush;
  }
  return 0;
}

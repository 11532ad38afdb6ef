#include "backends/llm/structured/json_string_except.h"

#include <algorithm>
#include <map>
#include <set>

#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm::structured {
namespace {

// The characters a JSON string writes escaped (json_grammar.h): control characters, '"',
// '\\' and DEL.
bool Escaped(uint32_t cp) {
  return cp < 0x20 || cp == '"' || cp == '\\' || cp == 0x7F;
}

// Every spelling of `cp` that json_grammar.h's string rule accepts.
std::vector<std::string> Spellings(uint32_t cp) {
  if (!Escaped(cp)) {
    std::string utf8;
    AppendUtf8(cp, &utf8);
    return {utf8};
  }
  if (cp == '"' || cp == '\\') return {std::string("\\") + static_cast<char>(cp)};
  static const std::map<uint32_t, char> kShort = {
      {0x08, 'b'}, {0x09, 't'}, {0x0A, 'n'}, {0x0C, 'f'}, {0x0D, 'r'}};
  std::vector<std::string> out;
  if (auto it = kShort.find(cp); it != kShort.end()) out.push_back(std::string("\\") + it->second);
  const char* lower = "0123456789abcdef";
  const char* upper = "0123456789ABCDEF";
  const std::string head = std::string("\\u00") + lower[cp >> 4];
  out.push_back(head + lower[cp & 15]);
  if (lower[cp & 15] != upper[cp & 15]) out.push_back(head + upper[cp & 15]);
  return out;
}

int32_t SpellingsExpr(Grammar& g, uint32_t cp) {
  std::vector<int32_t> alts;
  for (const std::string& s : Spellings(cp)) alts.push_back(g.Literal(s));
  return g.Alt(std::move(alts));
}

struct TrieNode {
  std::map<uint32_t, int32_t> children;  // code point -> node index (always a later node)
  bool end = false;                      // an excluded string ends here
};

std::vector<TrieNode> BuildTrie(const std::vector<std::string>& excluded) {
  std::vector<TrieNode> trie(1);
  for (const std::string& s : excluded) {
    int32_t node = 0;
    std::string_view rest = s;
    while (!rest.empty()) {
      const Utf8Step step = NextUtf8(rest);
      // Keys come from a parsed JSON text (valid UTF-8); anything else is U+FFFD, as written.
      const uint32_t cp = step.kind == Utf8Step::Kind::kChar ? step.codepoint : 0xFFFD;
      rest.remove_prefix(step.length);
      auto [it, added] = trie[node].children.emplace(cp, static_cast<int32_t>(trie.size()));
      if (added) trie.emplace_back();
      node = it->second;
    }
    trie[node].end = true;
  }
  return trie;
}

// One string character whose code point is none of `taken`.
class OtherChar {
 public:
  OtherChar(Grammar& g, const JsonRules& rules) : g_(g), plain_(rules.plain_chars) {
    std::vector<int32_t> alts;
    for (uint32_t cp = 0; cp <= 0x7F; ++cp) {
      if (Escaped(cp)) alts.push_back(SpellingsExpr(g_, cp));
    }
    any_escape_ = g_.Alt(std::move(alts));
  }

  int32_t Expr(const std::set<uint32_t>& taken) {
    CodepointRanges plain;
    for (auto [lo, hi] : plain_) {
      for (auto it = taken.lower_bound(lo); it != taken.end() && *it <= hi; ++it) {
        if (*it > lo) plain.emplace_back(lo, *it - 1);
        lo = *it + 1;
      }
      if (lo <= hi) plain.emplace_back(lo, hi);
    }
    int32_t escapes = any_escape_;
    if (std::any_of(taken.begin(), taken.end(), Escaped)) {
      std::vector<int32_t> alts;
      for (uint32_t cp = 0; cp <= 0x7F; ++cp) {
        if (Escaped(cp) && taken.count(cp) == 0) alts.push_back(SpellingsExpr(g_, cp));
      }
      escapes = g_.Alt(std::move(alts));
    }
    return g_.Alt({g_.Codepoints(plain), escapes});
  }

 private:
  Grammar& g_;
  const CodepointRanges& plain_;
  int32_t any_escape_ = -1;
};

}  // namespace

int32_t AddStringExcept(Grammar& g, const JsonRules& rules,
                        const std::vector<std::string>& excluded) {
  if (excluded.empty()) return g.Ref(rules.string);
  const int32_t quote = g.Literal("\"");
  const std::vector<TrieNode> trie = BuildTrie(excluded);
  OtherChar other(g, rules);
  // Past a character no excluded string has there: any string's rest.
  const int32_t rest = g.Seq({g.Star(rules.string_char), quote});
  // Children come after their parent: built from the last node back, without recursion
  // (a key may be long).
  std::vector<int32_t> after(trie.size(), -1);
  for (size_t i = trie.size(); i-- > 0;) {
    const TrieNode& node = trie[i];
    std::set<uint32_t> taken;
    std::vector<int32_t> alts;
    for (const auto& [cp, child] : node.children) {
      taken.insert(cp);
      alts.push_back(g.Seq({SpellingsExpr(g, cp), after[child]}));
    }
    alts.push_back(g.Seq({other.Expr(taken), rest}));
    if (!node.end) alts.push_back(quote);
    after[i] = g.Alt(std::move(alts));
  }
  return g.Seq({quote, after[0]});
}

}  // namespace sluice::llm::structured

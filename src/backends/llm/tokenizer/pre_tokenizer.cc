#include "backends/llm/tokenizer/pre_tokenizer.h"

#include <utility>

#include "backends/llm/tokenizer/byte_level.h"

namespace sluice::llm {
namespace {

constexpr int kMaxNesting = 8;
// GPT-2's pattern, used by ByteLevel when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string QuoteRegex(std::string_view s) {
  std::string out = "\\Q";
  size_t pos = 0;
  while (true) {  // \E inside \Q...\E must be split
    const size_t hit = s.find("\\E", pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos)).append("\\E\\\\E\\Q");
    pos = hit + 2;
  }
  out.append(s.substr(pos)).append("\\E");
  return out;
}

// Splits `text` by the matches of `regex` following Hugging Face's SplitDelimiterBehavior.
Status SplitByMatches(const Regex& regex, std::string_view text, bool invert, int behavior,
                      std::vector<std::string>* out) {
  ASSIGN_OR_RETURN(auto matches, regex.FindAll(text));
  // (begin, end, is_delimiter) covering the whole text.
  std::vector<std::tuple<size_t, size_t, bool>> parts;
  size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (b > prev) parts.emplace_back(prev, b, invert);
    parts.emplace_back(b, e, !invert);
    prev = e;
  }
  if (prev < text.size()) parts.emplace_back(prev, text.size(), invert);
  // behavior: 0 Isolated, 1 Removed, 2 MergedWithPrevious, 3 MergedWithNext, 4 Contiguous
  std::string pending;
  bool pending_delim = false;
  for (const auto& [b, e, delim] : parts) {
    std::string_view piece = text.substr(b, e - b);
    switch (behavior) {
      case 0:
        out->emplace_back(piece);
        break;
      case 1:
        if (!delim) out->emplace_back(piece);
        break;
      case 2:
        if (delim && !out->empty()) {
          out->back().append(piece);
        } else {
          out->emplace_back(piece);
        }
        break;
      case 3:
        if (delim) {
          if (!pending.empty()) out->push_back(std::move(pending));
          pending.assign(piece);
        } else {
          pending.append(piece);
          out->push_back(std::move(pending));
          pending.clear();
        }
        break;
      case 4:
        if (!out->empty() && delim && pending_delim) {
          out->back().append(piece);
        } else {
          out->emplace_back(piece);
        }
        pending_delim = delim;
        break;
      default:
        break;
    }
  }
  if (!pending.empty()) out->push_back(std::move(pending));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(const nlohmann::json& j) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  if (!j.is_null()) RETURN_IF_ERROR(p->Add(j, 0));
  return p;
}

Status PreTokenizer::Add(const nlohmann::json& j, int depth) {
  if (depth > kMaxNesting) return InvalidArgument("pre_tokenizer: nesting deeper than 8");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("pre_tokenizer: expected an object with a string 'type'");
  }
  const std::string type = j["type"];
  Step s;
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array()) {
      return InvalidArgument("pre_tokenizer Sequence: 'pretokenizers' must be an array");
    }
    for (const auto& sub : j["pretokenizers"]) RETURN_IF_ERROR(Add(sub, depth + 1));
    return Status::Ok();
  } else if (type == "Split") {
    s.kind = Kind::kSplit;
    const auto& p = j.value("pattern", nlohmann::json());
    std::string pattern;
    if (p.is_object() && p.contains("Regex") && p["Regex"].is_string()) {
      pattern = p["Regex"].get<std::string>();
    } else if (p.is_object() && p.contains("String") && p["String"].is_string()) {
      pattern = QuoteRegex(p["String"].get<std::string>());
    } else {
      return InvalidArgument(
          "pre_tokenizer Split: 'pattern' must be {Regex: ...} or {String: ...}");
    }
    ASSIGN_OR_RETURN(s.regex, Regex::Compile(pattern, "pre_tokenizer Split pattern"));
    const std::string b = j.value("behavior", std::string("Isolated"));
    if (b == "Isolated")
      s.behavior = Behavior::kIsolated;
    else if (b == "Removed")
      s.behavior = Behavior::kRemoved;
    else if (b == "MergedWithPrevious")
      s.behavior = Behavior::kMergedWithPrevious;
    else if (b == "MergedWithNext")
      s.behavior = Behavior::kMergedWithNext;
    else if (b == "Contiguous")
      s.behavior = Behavior::kContiguous;
    else
      return InvalidArgument("pre_tokenizer Split: unknown behavior '" + b + "'");
    s.invert = j.value("invert", false);
  } else if (type == "ByteLevel") {
    s.kind = Kind::kByteLevel;
    s.add_prefix_space = j.value("add_prefix_space", false);
    if (j.value("use_regex", true)) {
      ASSIGN_OR_RETURN(s.regex, Regex::Compile(kGpt2Pattern, "ByteLevel regex"));
    }
  } else if (type == "Metaspace") {
    s.kind = Kind::kMetaspace;
    s.replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    if (s.replacement.empty()) return InvalidArgument("pre_tokenizer Metaspace: empty replacement");
    const std::string scheme = j.contains("prepend_scheme") && j["prepend_scheme"].is_string()
                                   ? j["prepend_scheme"].get<std::string>()
                                   : (j.value("add_prefix_space", true) ? "always" : "never");
    if (scheme == "always")
      s.prepend = Prepend::kAlways;
    else if (scheme == "first")
      s.prepend = Prepend::kFirst;
    else if (scheme == "never")
      s.prepend = Prepend::kNever;
    else
      return InvalidArgument("pre_tokenizer Metaspace: unknown prepend_scheme '" + scheme + "'");
    s.split = j.value("split", true);
  } else if (type == "Digits") {
    s.kind = Kind::kDigits;
    s.individual_digits = j.value("individual_digits", false);
    ASSIGN_OR_RETURN(
        s.regex, Regex::Compile(s.individual_digits ? R"(\p{N})" : R"(\p{N}+)", "Digits pattern"));
  } else if (type == "WhitespaceSplit") {
    s.kind = Kind::kWhitespaceSplit;
    ASSIGN_OR_RETURN(s.regex, Regex::Compile(R"(\s+)", "WhitespaceSplit pattern"));
  } else {
    return Unsupported("pre_tokenizer type '" + type + "' is not supported");
  }
  steps_.push_back(std::move(s));
  return Status::Ok();
}

Status PreTokenizer::Apply(const Step& s, std::vector<Piece>* pieces) const {
  std::vector<Piece> next;
  next.reserve(pieces->size());
  for (Piece& p : *pieces) {
    std::vector<std::string> parts;
    switch (s.kind) {
      case Kind::kSplit: {
        const int behavior = static_cast<int>(s.behavior);
        RETURN_IF_ERROR(SplitByMatches(*s.regex, p.text, s.invert, behavior, &parts));
        break;
      }
      case Kind::kByteLevel: {
        std::string text = std::move(p.text);
        if (s.add_prefix_space && (text.empty() || text[0] != ' ')) text.insert(0, " ");
        std::vector<std::string> raw;
        if (s.regex) {
          RETURN_IF_ERROR(SplitByMatches(*s.regex, text, false, 0, &raw));
        } else {
          raw.push_back(std::move(text));
        }
        for (const std::string& r : raw) {
          std::string mapped;
          ByteLevelEncode(r, &mapped);
          parts.push_back(std::move(mapped));
        }
        break;
      }
      case Kind::kMetaspace: {
        std::string text;
        size_t pos = 0;
        while (true) {
          const size_t hit = p.text.find(' ', pos);
          if (hit == std::string::npos) break;
          text.append(p.text, pos, hit - pos).append(s.replacement);
          pos = hit + 1;
        }
        text.append(p.text, pos);
        const bool starts = text.compare(0, s.replacement.size(), s.replacement) == 0;
        const bool prepend =
            s.prepend == Prepend::kAlways || (s.prepend == Prepend::kFirst && p.at_input_start);
        if (prepend && !starts) text.insert(0, s.replacement);
        if (s.split) {
          // MergedWithNext on the replacement character: each "▁" starts a new word.
          size_t b = 0;
          for (size_t i = 1; i <= text.size(); ++i) {
            if (i == text.size() || text.compare(i, s.replacement.size(), s.replacement) == 0) {
              if (i > b) parts.push_back(text.substr(b, i - b));
              b = i;
            }
          }
        } else {
          parts.push_back(std::move(text));
        }
        break;
      }
      case Kind::kDigits:
        RETURN_IF_ERROR(SplitByMatches(*s.regex, p.text, false, 0, &parts));
        break;
      case Kind::kWhitespaceSplit:
        RETURN_IF_ERROR(SplitByMatches(*s.regex, p.text, false, 1, &parts));
        break;
    }
    bool first = p.at_input_start;
    for (std::string& part : parts) {
      if (part.empty()) continue;
      next.push_back({std::move(part), first});
      first = false;
    }
  }
  *pieces = std::move(next);
  return Status::Ok();
}

Result<std::vector<std::string>> PreTokenizer::Split(std::string_view text,
                                                     bool at_input_start) const {
  std::vector<Piece> pieces;
  if (!text.empty()) pieces.push_back({std::string(text), at_input_start});
  for (const Step& s : steps_) RETURN_IF_ERROR(Apply(s, &pieces));
  std::vector<std::string> out;
  out.reserve(pieces.size());
  for (Piece& p : pieces) out.push_back(std::move(p.text));
  return out;
}

}  // namespace sluice::llm

#include "backends/llm/tokenizer/normalizer.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

namespace sluice::llm {
namespace {

constexpr int kMaxNesting = 8;

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(s);
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

}  // namespace

Result<std::unique_ptr<Normalizer>> Normalizer::FromJson(const nlohmann::json& j) {
  std::unique_ptr<Normalizer> n(new Normalizer());
  if (!j.is_null()) RETURN_IF_ERROR(n->Add(j, 0));
  return n;
}

Status Normalizer::Add(const nlohmann::json& j, int depth) {
  if (depth > kMaxNesting) return InvalidArgument("normalizer: nesting deeper than 8");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("normalizer: expected an object with a string 'type'");
  }
  const std::string type = j["type"];
  if (type == "Sequence") {
    if (!j.contains("normalizers") || !j["normalizers"].is_array()) {
      return InvalidArgument("normalizer Sequence: 'normalizers' must be an array");
    }
    for (const auto& sub : j["normalizers"]) RETURN_IF_ERROR(Add(sub, depth + 1));
  } else if (type == "NFC" || type == "NFKC") {
    steps_.push_back({type == "NFC" ? Kind::kNfc : Kind::kNfkc, "", ""});
    may_shrink_ = true;
  } else if (type == "NFD" || type == "NFKD") {
    steps_.push_back({type == "NFD" ? Kind::kNfd : Kind::kNfkd, "", ""});
  } else if (type == "Lowercase") {
    steps_.push_back({Kind::kLowercase, "", ""});
  } else if (type == "Prepend") {
    if (!j.contains("prepend") || !j["prepend"].is_string()) {
      return InvalidArgument("normalizer Prepend: 'prepend' must be a string");
    }
    steps_.push_back({Kind::kPrepend, j["prepend"].get<std::string>(), ""});
  } else if (type == "Replace") {
    const auto& p = j.value("pattern", nlohmann::json());
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string()) {
      return Unsupported("normalizer Replace: only a 'String' pattern is supported");
    }
    if (!j.contains("content") || !j["content"].is_string()) {
      return InvalidArgument("normalizer Replace: 'content' must be a string");
    }
    steps_.push_back(
        {Kind::kReplace, p["String"].get<std::string>(), j["content"].get<std::string>()});
    if (steps_.back().b.size() < steps_.back().a.size()) may_shrink_ = true;
  } else {
    return Unsupported("normalizer type '" + type + "' is not supported");
  }
  return Status::Ok();
}

Result<std::string> Normalizer::Normalize(std::string_view text) const {
  std::string cur(text);
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::kNfc:
      case Kind::kNfd:
      case Kind::kNfkc:
      case Kind::kNfkd: {
        if (IsAscii(cur)) break;  // ASCII is invariant under every normalization form
        UErrorCode ec = U_ZERO_ERROR;
        const icu::Normalizer2* n = s.kind == Kind::kNfc    ? icu::Normalizer2::getNFCInstance(ec)
                                    : s.kind == Kind::kNfd  ? icu::Normalizer2::getNFDInstance(ec)
                                    : s.kind == Kind::kNfkc ? icu::Normalizer2::getNFKCInstance(ec)
                                                            : icu::Normalizer2::getNFKDInstance(ec);
        if (U_FAILURE(ec)) return Internal("ICU normalizer unavailable");
        icu::UnicodeString u = icu::UnicodeString::fromUTF8(cur);
        icu::UnicodeString norm = n->normalize(u, ec);
        if (U_FAILURE(ec)) return InvalidArgument("text could not be normalized");
        cur.clear();
        norm.toUTF8String(cur);
        break;
      }
      case Kind::kLowercase: {
        icu::UnicodeString u = icu::UnicodeString::fromUTF8(cur);
        u.toLower();
        cur.clear();
        u.toUTF8String(cur);
        break;
      }
      case Kind::kReplace:
        cur = ReplaceAll(cur, s.a, s.b);
        break;
      case Kind::kPrepend:
        // Hugging Face prepends only to non-empty text.
        if (!cur.empty()) cur.insert(0, s.a);
        break;
    }
  }
  return cur;
}

}  // namespace sluice::llm

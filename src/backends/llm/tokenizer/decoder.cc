#include "backends/llm/tokenizer/decoder.h"

#include "backends/llm/tokenizer/byte_level.h"
#include "common/json_fields.h"

namespace sluice::llm {
namespace {

constexpr int kMaxNesting = 8;

std::string ReplaceAll(const std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos).append(to);
    pos = hit + from.size();
  }
  out.append(s, pos);
  return out;
}

// "<0xAB>" -> 0xAB; -1 if the token is not a byte token.
int ParseByteToken(const std::string& t) {
  if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(t[3]), lo = hex(t[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

}  // namespace

Result<std::unique_ptr<Decoder>> Decoder::FromJson(const nlohmann::json& j) {
  std::unique_ptr<Decoder> d(new Decoder());
  if (!j.is_null()) RETURN_IF_ERROR(d->Add(j, 0));
  return d;
}

Status Decoder::Add(const nlohmann::json& j, int depth) {
  if (depth > kMaxNesting) return InvalidArgument("decoder: nesting deeper than 8");
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    return InvalidArgument("decoder: expected an object with a string 'type'");
  }
  const std::string type = j["type"];
  Step s;
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) {
      return InvalidArgument("decoder Sequence: 'decoders' must be an array");
    }
    for (const auto& sub : j["decoders"]) RETURN_IF_ERROR(Add(sub, depth + 1));
    return Status::Ok();
  } else if (type == "ByteLevel") {
    s.kind = Kind::kByteLevel;
  } else if (type == "Metaspace") {
    s.kind = Kind::kMetaspace;
    s.a = j.value("replacement", std::string("\xE2\x96\x81"));
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      s.prepend = j["prepend_scheme"].get<std::string>() != "never";
    } else {
      s.prepend = j.value("add_prefix_space", true);
    }
  } else if (type == "Replace") {
    s.kind = Kind::kReplace;
    const auto& p = j.value("pattern", nlohmann::json());
    if (!p.is_object() || !p.contains("String") || !p["String"].is_string()) {
      return Unsupported("decoder Replace: only a 'String' pattern is supported");
    }
    if (!j.contains("content") || !j["content"].is_string()) {
      return InvalidArgument("decoder Replace: 'content' must be a string");
    }
    s.a = p["String"].get<std::string>();
    s.b = j["content"].get<std::string>();
  } else if (type == "ByteFallback") {
    s.kind = Kind::kByteFallback;
  } else if (type == "Fuse") {
    s.kind = Kind::kFuse;
  } else if (type == "Strip") {
    s.kind = Kind::kStrip;
    s.a = j.value("content", std::string(" "));
    // A JSON integer (json::value would cast a float such as 2e108 to int64: undefined).
    int64_t start = 0, stop = 0;
    for (auto [key, out] : {std::pair{"start", &start}, std::pair{"stop", &stop}}) {
      if (j.contains(key) && !json_fields::IntegerIn(j[key], 0, 1024)) {
        return InvalidArgument(std::string("decoder Strip: '") + key +
                               "' must be an integer in [0, 1024]");
      }
      if (j.contains(key)) *out = j[key].get<int64_t>();
    }
    if (s.a.empty()) return InvalidArgument("decoder Strip: 'content' must not be empty");
    s.start = static_cast<size_t>(start);
    s.stop = static_cast<size_t>(stop);
  } else {
    return Unsupported("decoder type '" + type + "' is not supported");
  }
  steps_.push_back(std::move(s));
  return Status::Ok();
}

std::string Decoder::Decode(std::vector<std::string> tokens) const {
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::kByteLevel: {
        std::string joined;
        for (const std::string& t : tokens) joined.append(ByteLevelDecode(t));
        tokens.assign(1, std::move(joined));
        break;
      }
      case Kind::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = ReplaceAll(tokens[i], s.a, (i == 0 && s.prepend) ? "" : " ");
        }
        break;
      case Kind::kReplace:
        for (std::string& t : tokens) t = ReplaceAll(t, s.a, s.b);
        break;
      case Kind::kByteFallback:
        for (std::string& t : tokens) {
          const int b = ParseByteToken(t);
          if (b >= 0) t.assign(1, static_cast<char>(b));
        }
        break;
      case Kind::kFuse: {
        std::string joined;
        for (const std::string& t : tokens) joined.append(t);
        tokens.assign(1, std::move(joined));
        break;
      }
      case Kind::kStrip:
        for (std::string& t : tokens) {
          size_t b = 0, n = 0;
          while (n < s.start && t.compare(b, s.a.size(), s.a) == 0) {
            b += s.a.size();
            ++n;
          }
          size_t e = t.size();
          n = 0;
          while (n < s.stop && e >= b + s.a.size() &&
                 t.compare(e - s.a.size(), s.a.size(), s.a) == 0) {
            e -= s.a.size();
            ++n;
          }
          t = t.substr(b, e - b);
        }
        break;
    }
  }
  std::string out;
  for (const std::string& t : tokens) out.append(t);
  return out;
}

}  // namespace sluice::llm

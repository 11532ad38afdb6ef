#include "backends/llm/tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "backends/llm/tokenizer/bounded_json.h"
#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm {
namespace {

constexpr int kMaxNesting = 8;

bool IsSpaceByte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsWordByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '_';
}

// tokenizer_config.json token fields are a string, an AddedToken object or null.
std::optional<std::string> TokenContent(const nlohmann::json& c, const char* key) {
  if (!c.contains(key)) return std::nullopt;
  const auto& v = c[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::string& tokenizer_json_path,
                                                       const std::string& config_path) {
  ASSIGN_OR_RETURN(std::string tj, ReadFileBounded(tokenizer_json_path, kMaxTokenizerJsonBytes));
  std::string cj;
  if (!config_path.empty()) {
    ASSIGN_OR_RETURN(cj, ReadFileBounded(config_path, kMaxConfigJsonBytes));
  }
  return FromJson(tj, cj);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view tokenizer_json,
                                                       std::string_view config_json) {
  if (tokenizer_json.size() > kMaxTokenizerJsonBytes)
    return InvalidArgument("tokenizer.json: too large");
  if (config_json.size() > kMaxConfigJsonBytes)
    return InvalidArgument("tokenizer_config.json: too large");
  ASSIGN_OR_RETURN(nlohmann::json tj,
                   ParseJsonBounded(tokenizer_json, kMaxJsonDepth, "tokenizer.json"));
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  // The readers take optional fields with json::value(key, default), which throws when the
  // key is there with another type ({"type": true}): such a file is a bad file, not a crash.
  const char* reading = "tokenizer.json";
  try {
    RETURN_IF_ERROR(t->LoadTokenizerJson(tj));
    if (!config_json.empty()) {
      reading = "tokenizer_config.json";
      ASSIGN_OR_RETURN(nlohmann::json cj,
                       ParseJsonBounded(config_json, kMaxJsonDepth, "tokenizer_config.json"));
      if (!cj.is_object()) return InvalidArgument("tokenizer_config.json: not a JSON object");
      RETURN_IF_ERROR(t->LoadConfig(cj).WithPrefix("tokenizer_config.json"));
    }
  } catch (const nlohmann::json::exception& e) {
    return InvalidArgument(std::string(reading) + ": a field of the wrong type: " + e.what());
  }
  RETURN_IF_ERROR(t->Finish());
  return t;
}

Status Tokenizer::LoadTokenizerJson(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("tokenizer.json: not a JSON object");
  if (!j.contains("model")) return InvalidArgument("tokenizer.json: no 'model'");
  ASSIGN_OR_RETURN(model_, BpeModel::FromJson(j["model"]));

  int32_t max_id = -1;
  for (const auto& [tok, id] : model_->vocab()) max_id = std::max(max_id, id);

  const auto& added = j.value("added_tokens", nlohmann::json::array());
  if (!added.is_array()) return InvalidArgument("tokenizer.json: 'added_tokens' must be an array");
  if (added.size() > kMaxAddedTokens)
    return InvalidArgument("tokenizer.json: too many added_tokens");
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string()) {
      return InvalidArgument(
          "tokenizer.json: an added token lacks an integer 'id' or a string 'content'");
    }
    AddedToken t;
    const int64_t id = a["id"].get<int64_t>();
    t.content = a["content"].get<std::string>();
    if (id < 0 || id > BpeModel::kMaxId) {
      return InvalidArgument("tokenizer.json: added token '" + t.content + "' has id " +
                             std::to_string(id) + " outside [0, " +
                             std::to_string(BpeModel::kMaxId) + "]");
    }
    if (t.content.empty() || t.content.size() > BpeModel::kMaxTokenBytes ||
        !IsValidUtf8(t.content)) {
      return InvalidArgument("tokenizer.json: added token " + std::to_string(id) +
                             " has empty, oversized or non-UTF-8 content");
    }
    t.id = static_cast<int32_t>(id);
    t.special = a.value("special", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.normalized = a.value("normalized", !t.special);
    t.single_word = a.value("single_word", false);
    max_id = std::max(max_id, t.id);
    added_.push_back(std::move(t));
  }
  if (max_id < 0) return InvalidArgument("tokenizer.json: empty vocabulary");

  id_to_token_.assign(static_cast<size_t>(max_id) + 1, std::string());
  id_flags_.assign(static_cast<size_t>(max_id) + 1, 0);
  for (const auto& [tok, id] : model_->vocab()) {
    if (id_flags_[id] & 1)
      return InvalidArgument("tokenizer.json: id " + std::to_string(id) +
                             " appears twice in the vocabulary");
    id_to_token_[id] = tok;
    id_flags_[id] = 1;
  }
  for (const AddedToken& t : added_) {
    if ((id_flags_[t.id] & 1) && id_to_token_[t.id] != t.content) {
      return InvalidArgument("tokenizer.json: added token '" + t.content + "' has id " +
                             std::to_string(t.id) + ", which is already the token '" +
                             id_to_token_[t.id] + "'");
    }
    id_to_token_[t.id] = t.content;
    id_flags_[t.id] = static_cast<uint8_t>(1 | (t.special ? 2 : 0));
    if (t.lstrip || t.rstrip) strips_whitespace_ = true;
  }

  ASSIGN_OR_RETURN(normalizer_, Normalizer::FromJson(j.value("normalizer", nlohmann::json())));
  ASSIGN_OR_RETURN(pre_tokenizer_,
                   PreTokenizer::FromJson(j.value("pre_tokenizer", nlohmann::json())));
  ASSIGN_OR_RETURN(decoder_, Decoder::FromJson(j.value("decoder", nlohmann::json())));
  RETURN_IF_ERROR(LoadPostProcessor(j.value("post_processor", nlohmann::json()), 0));
  return Status::Ok();
}

Status Tokenizer::LoadPostProcessor(const nlohmann::json& p, int depth) {
  if (p.is_null()) return Status::Ok();
  if (depth > kMaxNesting) return InvalidArgument("post_processor: nesting deeper than 8");
  if (!p.is_object() || !p.contains("type") || !p["type"].is_string()) {
    return InvalidArgument("tokenizer.json: post_processor must be an object with a string 'type'");
  }
  const std::string type = p["type"];
  if (type == "ByteLevel") return Status::Ok();  // offsets only
  if (type == "Sequence") {
    if (!p.contains("processors") || !p["processors"].is_array()) {
      return InvalidArgument("post_processor Sequence: 'processors' must be an array");
    }
    for (const auto& sub : p["processors"]) RETURN_IF_ERROR(LoadPostProcessor(sub, depth + 1));
    return Status::Ok();
  }
  auto id_of = [](const nlohmann::json& pair) -> std::optional<int32_t> {
    if (!pair.is_array() || pair.size() != 2 || !pair[1].is_number_integer()) return std::nullopt;
    const int64_t id = pair[1].get<int64_t>();
    if (id < 0 || id > BpeModel::kMaxId) return std::nullopt;
    return static_cast<int32_t>(id);
  };
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const auto cls = id_of(p.value("cls", nlohmann::json())),
               sep = id_of(p.value("sep", nlohmann::json()));
    if (!cls || !sep) return InvalidArgument("post_processor " + type + ": bad 'cls' or 'sep'");
    prefix_ids_.push_back(*cls);
    suffix_ids_.push_back(*sep);
    return Status::Ok();
  }
  if (type != "TemplateProcessing")
    return Unsupported("post_processor type '" + type + "' is not supported");
  const auto& single = p.value("single", nlohmann::json());
  const auto& specials = p.value("special_tokens", nlohmann::json::object());
  if (!single.is_array() || !specials.is_object()) {
    return InvalidArgument("post_processor TemplateProcessing: bad 'single' or 'special_tokens'");
  }
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.is_object() && item.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken") || !item["SpecialToken"].is_object() ||
        !item["SpecialToken"].contains("id") || !item["SpecialToken"]["id"].is_string()) {
      return InvalidArgument("post_processor TemplateProcessing: bad item in 'single'");
    }
    const std::string name = item["SpecialToken"]["id"];
    if (!specials.contains(name) || !specials[name].is_object() ||
        !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
      return InvalidArgument("post_processor TemplateProcessing: special token '" + name +
                             "' is not defined");
    }
    for (const auto& idj : specials[name]["ids"]) {
      if (!idj.is_number_integer() || idj.get<int64_t>() < 0 ||
          idj.get<int64_t>() > BpeModel::kMaxId) {
        return InvalidArgument("post_processor TemplateProcessing: special token '" + name +
                               "' has a bad id");
      }
      (seen_sequence ? suffix_ids_ : prefix_ids_).push_back(idj.get<int32_t>());
    }
  }
  return Status::Ok();
}

Status Tokenizer::LoadConfig(const nlohmann::json& c) {
  auto resolve = [&](const char* key, std::optional<int32_t>* id, std::string* text) -> Status {
    const auto content = TokenContent(c, key);
    if (!content) return Status::Ok();
    const auto found = TokenToId(*content);
    if (!found)
      return InvalidArgument(std::string(key) + " '" + *content + "' is not in the vocabulary");
    *id = found;
    if (text != nullptr) *text = *content;
    return Status::Ok();
  };
  RETURN_IF_ERROR(resolve("bos_token", &bos_id_, &bos_token_));
  RETURN_IF_ERROR(resolve("eos_token", &eos_id_, &eos_token_));
  RETURN_IF_ERROR(resolve("pad_token", &pad_id_, nullptr));
  std::optional<int32_t> unk;
  RETURN_IF_ERROR(resolve("unk_token", &unk, nullptr));

  // added_tokens_decoder: {"151643": {"content": "<|endoftext|>", ...}} must agree with
  // tokenizer.json: an id outside the vocabulary is a broken model folder.
  if (c.contains("added_tokens_decoder") && c["added_tokens_decoder"].is_object()) {
    for (const auto& [key, v] : c["added_tokens_decoder"].items()) {
      char* end = nullptr;
      const long long id = std::strtoll(key.c_str(), &end, 10);
      if (key.empty() || *end != '\0' || !v.is_object() || !v.contains("content") ||
          !v["content"].is_string()) {
        return InvalidArgument("added_tokens_decoder: bad entry '" + key + "'");
      }
      const std::string content = v["content"];
      if (id < 0 || id >= vocab_size() || !(id_flags_[id] & 1)) {
        return InvalidArgument("added_tokens_decoder: special token '" + content + "' has id " +
                               key + ", outside the vocabulary of " + std::to_string(vocab_size()) +
                               " ids");
      }
      if (id_to_token_[id] != content) {
        return InvalidArgument("added_tokens_decoder: id " + key + " is '" + content +
                               "' here but '" + id_to_token_[id] + "' in tokenizer.json");
      }
    }
  }

  // add_bos_token / add_eos_token (Llama/Mistral configs) override the post-processor.
  auto apply_flag = [&](const char* key, const std::optional<int32_t>& id,
                        std::vector<int32_t>* ids, bool front) {
    if (!c.contains(key) || !c[key].is_boolean() || !id) return;
    const auto it = std::find(ids->begin(), ids->end(), *id);
    if (c[key].get<bool>()) {
      if (it == ids->end()) ids->insert(front ? ids->begin() : ids->end(), *id);
    } else if (it != ids->end()) {
      ids->erase(it);
    }
  };
  apply_flag("add_bos_token", bos_id_, &prefix_ids_, true);
  apply_flag("add_eos_token", eos_id_, &suffix_ids_, false);

  if (c.contains("chat_template")) {
    const auto& ct = c["chat_template"];
    if (ct.is_string()) {
      chat_template_ = ct.get<std::string>();
    } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, ...]
      for (const auto& e : ct) {
        if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
        if (chat_template_.empty() || e.value("name", std::string()) == "default") {
          chat_template_ = e["template"].get<std::string>();
        }
      }
    }
  }
  return Status::Ok();
}

Status Tokenizer::Finish() {
  for (const std::vector<int32_t>* v : {&prefix_ids_, &suffix_ids_}) {
    for (int32_t id : *v) {
      if (id >= vocab_size() || !(id_flags_[id] & 1)) {
        return InvalidArgument("tokenizer.json: post_processor special token id " +
                               std::to_string(id) + " is outside the vocabulary");
      }
    }
  }
  added_by_first_byte_.assign(256, {});
  for (size_t i = 0; i < added_.size(); ++i) {
    added_by_first_byte_[static_cast<uint8_t>(added_[i].content[0])].push_back(i);
  }
  for (auto& list : added_by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return added_[a].content.size() > added_[b].content.size();
    });
  }
  max_token_bytes_ = 4;  // an unknown character becomes one unk token
  for (const std::string& t : id_to_token_) max_token_bytes_ = std::max(max_token_bytes_, t.size());
  return Status::Ok();
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  for (const AddedToken& t : added_) {
    if (t.content == token) return t.id;
  }
  const auto it = model_->vocab().find(std::string(token));
  if (it == model_->vocab().end()) return std::nullopt;
  return it->second;
}

std::optional<std::string_view> Tokenizer::IdToToken(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !(id_flags_[id] & 1)) return std::nullopt;
  return std::string_view(id_to_token_[id]);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && (id_flags_[id] & 2);
}

bool Tokenizer::FindAddedToken(std::string_view text, size_t from, size_t* begin, size_t* end,
                               size_t* index) const {
  if (added_.empty()) return false;
  for (size_t pos = from; pos < text.size(); ++pos) {
    for (size_t i : added_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const AddedToken& t = added_[i];
      if (text.compare(pos, t.content.size(), t.content) != 0) continue;
      size_t b = pos, e = pos + t.content.size();
      if (t.single_word &&
          ((b > 0 && IsWordByte(text[b - 1])) || (e < text.size() && IsWordByte(text[e])))) {
        continue;
      }
      if (t.lstrip) {
        while (b > from && IsSpaceByte(text[b - 1])) --b;
      }
      if (t.rstrip) {
        while (e < text.size() && IsSpaceByte(text[e])) ++e;
      }
      *begin = b;
      *end = e;
      *index = i;
      return true;
    }
  }
  return false;
}

Status Tokenizer::EncodeSegment(std::string_view text, bool at_input_start, size_t limit,
                                std::vector<int32_t>* ids) const {
  std::string normalized;
  if (!normalizer_->empty()) {
    ASSIGN_OR_RETURN(normalized, normalizer_->Normalize(text));
    text = normalized;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> words, pre_tokenizer_->Split(text, at_input_start));
  for (const std::string& w : words) {
    RETURN_IF_ERROR(model_->EncodeWord(w, ids));
    if (ids->size() > limit) {
      return InvalidArgument("prompt has more than " + std::to_string(limit) + " tokens");
    }
  }
  return Status::Ok();
}

Result<std::vector<int32_t>> Tokenizer::EncodeImpl(std::string_view text, bool add_special_tokens,
                                                   size_t limit) const {
  if (!IsValidUtf8(text)) return InvalidArgument("text is not valid UTF-8");
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_ids_;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t b = 0, e = 0, index = 0;
    const bool found = FindAddedToken(text, pos, &b, &e, &index);
    const size_t seg_end = found ? b : text.size();
    if (seg_end > pos)
      RETURN_IF_ERROR(EncodeSegment(text.substr(pos, seg_end - pos), pos == 0, limit, &ids));
    if (!found) break;
    ids.push_back(added_[index].id);
    if (ids.size() > limit)
      return InvalidArgument("prompt has more than " + std::to_string(limit) + " tokens");
    pos = e;
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  if (ids.size() > limit)
    return InvalidArgument("prompt has more than " + std::to_string(limit) + " tokens");
  return ids;
}

Result<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                               bool add_special_tokens) const {
  return EncodeImpl(text, add_special_tokens, std::numeric_limits<size_t>::max());
}

size_t Tokenizer::MaxPromptBytes(size_t max_tokens) const {
  if (strips_whitespace_) return std::numeric_limits<size_t>::max();
  const size_t per_token = max_token_bytes_ * (normalizer_->may_shrink() ? 3 : 1);
  if (max_tokens > std::numeric_limits<size_t>::max() / per_token)
    return std::numeric_limits<size_t>::max();
  return max_tokens * per_token;
}

Result<std::vector<int32_t>> Tokenizer::EncodeBounded(std::string_view text,
                                                      bool add_special_tokens,
                                                      size_t max_tokens) const {
  const size_t cap = MaxPromptBytes(max_tokens);
  if (text.size() > cap) {
    return InvalidArgument("prompt of " + std::to_string(text.size()) + " bytes cannot fit in " +
                           std::to_string(max_tokens) + " tokens (byte cap " + std::to_string(cap) +
                           ")");
  }
  return EncodeImpl(text, add_special_tokens, max_tokens);
}

std::string Tokenizer::DecodeRaw(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || !(id_flags_[id] & 1)) continue;
    if (skip_special_tokens && (id_flags_[id] & 2)) continue;
    tokens.push_back(id_to_token_[id]);
  }
  return decoder_->Decode(std::move(tokens));
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return LossyUtf8(DecodeRaw(ids, skip_special_tokens));
}

}  // namespace sluice::llm

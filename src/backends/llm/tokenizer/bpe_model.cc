#include "backends/llm/tokenizer/bpe_model.h"

#include <cstdio>
#include <queue>

#include "backends/llm/tokenizer/utf8.h"

namespace sluice::llm {
namespace {

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// A model of type BPE whose options this encoder implements (no continuing_subword_prefix,
// end_of_word_suffix or dropout).
Status CheckSupported(const nlohmann::json& m) {
  if (!m.is_object()) return InvalidArgument("tokenizer.json: 'model' must be an object");
  const std::string type = m.value("type", std::string("BPE"));
  if (type != "BPE")
    return Unsupported("tokenizer.json: model type '" + type + "' is not supported");
  if (m.contains("continuing_subword_prefix") && m["continuing_subword_prefix"].is_string() &&
      !m["continuing_subword_prefix"].get<std::string>().empty()) {
    return Unsupported("tokenizer.json: BPE continuing_subword_prefix is not supported");
  }
  if (m.contains("end_of_word_suffix") && m["end_of_word_suffix"].is_string() &&
      !m["end_of_word_suffix"].get<std::string>().empty()) {
    return Unsupported("tokenizer.json: BPE end_of_word_suffix is not supported");
  }
  if (m.contains("dropout") && !m["dropout"].is_null() && m["dropout"] != 0.0) {
    return Unsupported("tokenizer.json: BPE dropout is not supported");
  }
  return Status::Ok();
}

// The two halves of merge number `rank`, written "a b" or [a, b].
Result<std::pair<std::string, std::string>> MergePair(const nlohmann::json& mj, uint32_t rank) {
  if (mj.is_string()) {  // "a b"
    const std::string& s = mj.get_ref<const std::string&>();
    const size_t sp = s.find(' ', 1);
    if (sp == std::string::npos)
      return InvalidArgument("tokenizer.json: merge " + std::to_string(rank) + " is not 'a b'");
    return std::make_pair(s.substr(0, sp), s.substr(sp + 1));
  }
  if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string())
    return std::make_pair(mj[0].get<std::string>(), mj[1].get<std::string>());
  return InvalidArgument("tokenizer.json: merge " + std::to_string(rank) +
                         " is neither 'a b' nor [a, b]");
}

}  // namespace

Result<std::unique_ptr<BpeModel>> BpeModel::FromJson(const nlohmann::json& m) {
  RETURN_IF_ERROR(CheckSupported(m));
  std::unique_ptr<BpeModel> bpe(new BpeModel());
  RETURN_IF_ERROR(bpe->LoadVocab(m));
  RETURN_IF_ERROR(bpe->LoadMerges(m));
  RETURN_IF_ERROR(bpe->LoadOptions(m));
  return bpe;
}

Status BpeModel::LoadVocab(const nlohmann::json& m) {
  const auto& vocab = m.value("vocab", nlohmann::json());
  if (!vocab.is_object()) return InvalidArgument("tokenizer.json: model.vocab must be an object");
  if (vocab.size() > kMaxVocab) {
    return InvalidArgument("tokenizer.json: vocabulary of " + std::to_string(vocab.size()) +
                           " tokens exceeds the limit of " + std::to_string(kMaxVocab));
  }
  vocab_.reserve(vocab.size());
  for (const auto& [tok, idj] : vocab.items()) {
    if (!idj.is_number_integer())
      return InvalidArgument("tokenizer.json: vocab id of '" + tok + "' is not an integer");
    const int64_t id = idj.get<int64_t>();
    if (id < 0 || id > kMaxId) {
      return InvalidArgument("tokenizer.json: vocab id " + std::to_string(id) + " of '" + tok +
                             "' is outside [0, " + std::to_string(kMaxId) + "]");
    }
    if (tok.size() > kMaxTokenBytes)
      return InvalidArgument("tokenizer.json: a vocab token exceeds 1024 bytes");
    vocab_.emplace(tok, static_cast<int32_t>(id));
  }
  return Status::Ok();
}

Status BpeModel::LoadMerges(const nlohmann::json& m) {
  const auto& merges = m.value("merges", nlohmann::json::array());
  if (!merges.is_array()) return InvalidArgument("tokenizer.json: model.merges must be an array");
  if (merges.size() > kMaxMerges) {
    return InvalidArgument("tokenizer.json: " + std::to_string(merges.size()) +
                           " merges exceed the limit of " + std::to_string(kMaxMerges));
  }
  merges_.reserve(merges.size());
  uint32_t rank = 0;
  for (const auto& mj : merges) {
    ASSIGN_OR_RETURN(auto pair, MergePair(mj, rank));
    const auto& [a, b] = pair;
    const auto ia = vocab_.find(a), ib = vocab_.find(b), im = vocab_.find(a + b);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
      return InvalidArgument("tokenizer.json: merge " + std::to_string(rank) +
                             " uses a token not in the vocabulary");
    }
    merges_.emplace(PairKey(ia->second, ib->second), Merge{rank, im->second});  // first wins
    ++rank;
  }
  return Status::Ok();
}

Status BpeModel::LoadOptions(const nlohmann::json& m) {
  byte_fallback_ = m.value("byte_fallback", false);
  ignore_merges_ = m.value("ignore_merges", false);
  fuse_unk_ = m.value("fuse_unk", false);
  for (int b = 0; b < 256; ++b) {
    byte_ids_[b] = -1;
    if (!byte_fallback_) continue;
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const auto it = vocab_.find(name);
    if (it == vocab_.end()) {
      return InvalidArgument(std::string("tokenizer.json: byte_fallback is on but '") + name +
                             "' is not in the vocabulary");
    }
    byte_ids_[b] = it->second;
  }
  if (m.contains("unk_token") && m["unk_token"].is_string()) {
    const std::string unk = m["unk_token"];
    const auto it = vocab_.find(unk);
    if (it == vocab_.end())
      return InvalidArgument("tokenizer.json: unk_token '" + unk + "' is not in the vocabulary");
    unk_ = it->second;
  }
  return Status::Ok();
}

std::optional<int32_t> BpeModel::Lookup(std::string_view s) const {
  const auto it = vocab_.find(std::string(s));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

Status BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return Status::Ok();
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    MutexLock lock(cache_mu_);
    const auto it = cache_.find(std::string(word));
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return Status::Ok();
    }
  }
  std::vector<int32_t> out;
  RETURN_IF_ERROR(EncodeUncached(word, &out));
  ids->insert(ids->end(), out.begin(), out.end());
  if (cacheable) {
    MutexLock lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();  // bounded: start over
    cache_.emplace(std::string(word), std::move(out));
  }
  return Status::Ok();
}

Status BpeModel::EncodeUncached(std::string_view word, std::vector<int32_t>* ids) const {
  if (ignore_merges_) {
    if (auto id = Lookup(word)) {
      ids->push_back(*id);
      return Status::Ok();
    }
  }
  // Initial symbols: one per character (or per byte with byte fallback).
  struct Sym {
    int32_t id;
    int prev, next;  // -1 = none
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(word.size());
  bool last_was_unk = false;
  size_t pos = 0;
  while (pos < word.size()) {
    const Utf8Step st = NextUtf8(word.substr(pos));
    const std::string_view ch = word.substr(pos, st.length);
    pos += st.length;
    if (auto id = Lookup(ch)) {
      syms.push_back({*id, 0, 0, true});
      last_was_unk = false;
    } else if (byte_fallback_) {
      for (char c : ch) syms.push_back({byte_ids_[static_cast<uint8_t>(c)], 0, 0, true});
      last_was_unk = false;
    } else if (unk_) {
      if (!(fuse_unk_ && last_was_unk)) syms.push_back({*unk_, 0, 0, true});
      last_was_unk = true;
    } else {
      return InvalidArgument(
          "text has a character with no token and the tokenizer has no unk_token");
    }
  }
  const int n = static_cast<int>(syms.size());
  for (int i = 0; i < n; ++i) {
    syms[i].prev = i - 1;
    syms[i].next = i + 1 < n ? i + 1 : -1;
  }
  // Min-heap of candidate merges by (rank, position): the lowest rank first, leftmost
  // among equals. Entries are validated when popped (lazy deletion).
  struct Cand {
    uint32_t rank;
    int pos;
    int32_t left, right;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push = [&](int i) {
    if (i < 0 || syms[i].next < 0) return;
    const int j = syms[i].next;
    const auto it = merges_.find(PairKey(syms[i].id, syms[j].id));
    if (it != merges_.end()) heap.push({it->second.rank, i, syms[i].id, syms[j].id});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& l = syms[c.pos];
    if (!l.alive || l.id != c.left || l.next < 0) continue;
    Sym& r = syms[l.next];
    if (r.id != c.right) continue;
    l.id = merges_.at(PairKey(c.left, c.right)).merged;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0) syms[r.next].prev = c.pos;
    push(l.prev);
    push(c.pos);
  }
  for (int i = 0; i >= 0 && i < n; i = syms[i].next) ids->push_back(syms[i].id);
  return Status::Ok();
}

}  // namespace sluice::llm

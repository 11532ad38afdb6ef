#include "backends/llm/structured/vocabulary.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "backends/llm/tokenizer/tokenizer.h"

namespace sluice::llm::structured {

namespace {

// "<tokens>:<FNV-1a over (length, bytes) of each token and the EOS ids>".
std::string IdentityOf(const std::vector<std::string>& bytes, const std::vector<int32_t>& eos_ids) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const std::string& s : bytes) {
    const uint64_t n = s.size();
    mix(&n, sizeof n);
    mix(s.data(), s.size());
  }
  for (int32_t id : eos_ids) mix(&id, sizeof id);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%zu:%016llx", bytes.size(), static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

Result<std::shared_ptr<const Vocabulary>> Vocabulary::Create(std::vector<std::string> token_bytes,
                                                             std::vector<int32_t> eos_ids) {
  if (token_bytes.empty()) return InvalidArgument("vocabulary is empty");
  for (int32_t id : eos_ids) {
    if (id < 0 || static_cast<size_t>(id) >= token_bytes.size()) {
      return InvalidArgument("vocabulary: EOS id " + std::to_string(id) + " is out of range");
    }
  }
  std::shared_ptr<Vocabulary> v(new Vocabulary());
  v->bytes_ = std::move(token_bytes);
  std::sort(eos_ids.begin(), eos_ids.end());
  eos_ids.erase(std::unique(eos_ids.begin(), eos_ids.end()), eos_ids.end());
  v->eos_ids_ = std::move(eos_ids);
  for (int32_t id : v->eos_ids_) v->bytes_[id].clear();  // EOS is never text

  v->identity_ = IdentityOf(v->bytes_, v->eos_ids_);

  // Trie in preorder: sort the non-empty tokens by bytes, then emit nodes for each new
  // suffix past the common prefix with the previous token.
  std::vector<int32_t> order;
  for (size_t i = 0; i < v->bytes_.size(); ++i) {
    if (!v->bytes_[i].empty()) order.push_back(static_cast<int32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return v->bytes_[a] != v->bytes_[b] ? v->bytes_[a] < v->bytes_[b] : a < b;
  });
  v->trie_byte_.push_back(0);
  v->trie_depth_.push_back(0);
  v->trie_parent_.push_back(-1);
  std::vector<std::vector<int32_t>> node_tokens(1);
  std::vector<int32_t> path{0};  // path[d]: the node at depth d on the current branch
  std::string_view prev;
  for (int32_t id : order) {
    const std::string_view s = v->bytes_[id];
    size_t common = 0;
    while (common < s.size() && common < prev.size() && s[common] == prev[common]) ++common;
    path.resize(common + 1);
    for (size_t d = common; d < s.size(); ++d) {
      const auto node = static_cast<int32_t>(v->trie_byte_.size());
      v->trie_byte_.push_back(static_cast<uint8_t>(s[d]));
      v->trie_depth_.push_back(static_cast<int32_t>(d + 1));
      v->trie_parent_.push_back(path.back());
      node_tokens.emplace_back();
      path.push_back(node);
    }
    node_tokens[path.back()].push_back(id);
    v->max_depth_ = std::max<int32_t>(v->max_depth_, static_cast<int32_t>(s.size()));
    prev = s;
  }
  const size_t n = v->trie_byte_.size();
  v->trie_end_.assign(n, 0);
  // Subtree end: the next node (in preorder) whose depth is not greater.
  std::vector<int32_t> open;
  for (size_t i = 0; i < n; ++i) {
    while (!open.empty() && v->trie_depth_[open.back()] >= v->trie_depth_[i]) {
      v->trie_end_[open.back()] = static_cast<int32_t>(i);
      open.pop_back();
    }
    open.push_back(static_cast<int32_t>(i));
  }
  for (int32_t o : open) v->trie_end_[o] = static_cast<int32_t>(n);
  v->trie_token_begin_.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    v->trie_token_begin_.push_back(static_cast<int32_t>(v->trie_tokens_.size()));
    v->trie_tokens_.insert(v->trie_tokens_.end(), node_tokens[i].begin(), node_tokens[i].end());
  }
  v->trie_token_begin_.push_back(static_cast<int32_t>(v->trie_tokens_.size()));
  return std::shared_ptr<const Vocabulary>(std::move(v));
}

bool Vocabulary::is_eos(int32_t id) const {
  return std::binary_search(eos_ids_.begin(), eos_ids_.end(), id);
}

Result<std::shared_ptr<const Vocabulary>> Vocabulary::FromTokenizer(const Tokenizer& tokenizer,
                                                                    std::vector<int32_t> eos_ids) {
  const int32_t n = tokenizer.vocab_size();
  auto text_token = [&](int32_t id) {
    return !tokenizer.IsSpecial(id) && tokenizer.IdToToken(id).has_value();
  };
  // A token's bytes are what it adds after an anchor token: decoded alone, a sentencepiece
  // token loses its leading space to the decoder's Strip ("\u2581hello" -> "hello").
  int32_t anchor = -1;
  std::string anchor_bytes;
  for (int32_t id = 0; id < n && anchor < 0; ++id) {
    if (!text_token(id)) continue;
    const int32_t one[] = {id};
    std::string b = tokenizer.DecodeRaw(one, false);
    if (b.size() == 1 && b[0] > ' ' && b[0] < 0x7F) {
      anchor = id;
      anchor_bytes = std::move(b);
    }
  }
  std::vector<std::string> bytes(static_cast<size_t>(std::max(n, 0)));
  for (int32_t id = 0; id < n; ++id) {
    if (!text_token(id)) continue;
    if (anchor < 0) {
      const int32_t one[] = {id};
      bytes[id] = tokenizer.DecodeRaw(one, false);
      continue;
    }
    const int32_t two[] = {anchor, id};
    std::string b = tokenizer.DecodeRaw(two, false);
    if (b.compare(0, anchor_bytes.size(), anchor_bytes) != 0) {
      return InvalidArgument("vocabulary: token " + std::to_string(id) +
                             " does not decode as a suffix of the text before it");
    }
    bytes[id] = b.substr(anchor_bytes.size());
  }
  if (eos_ids.empty() && tokenizer.eos_id().has_value()) eos_ids.push_back(*tokenizer.eos_id());
  return Create(std::move(bytes), std::move(eos_ids));
}

}  // namespace sluice::llm::structured

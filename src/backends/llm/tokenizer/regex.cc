#define PCRE2_CODE_UNIT_WIDTH 8
#include "backends/llm/tokenizer/regex.h"

#include <pcre2.h>

namespace sluice::llm {
namespace {

constexpr size_t kMaxPatternBytes = 16 * 1024;
constexpr uint32_t kMatchLimit = 10'000'000;

std::string PcreError(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};
struct MatchContextDeleter {
  void operator()(pcre2_match_context* m) const { pcre2_match_context_free(m); }
};

}  // namespace

Result<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern, std::string_view what) {
  if (pattern.size() > kMaxPatternBytes) {
    return InvalidArgument(std::string(what) + ": pattern of " + std::to_string(pattern.size()) +
                           " bytes exceeds the limit of " + std::to_string(kMaxPatternBytes));
  }
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &err_off, nullptr);
  if (code == nullptr) {
    return InvalidArgument(std::string(what) + ": invalid regex at offset " +
                           std::to_string(err_off) + ": " + PcreError(err));
  }
  // JIT is an optimisation only: without it matching still works.
  (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::unique_ptr<Regex>(new Regex(code, std::string(what)));
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

Result<std::vector<std::pair<size_t, size_t>>> Regex::FindAll(std::string_view text) const {
  auto* code = static_cast<pcre2_code*>(code_);
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> md(
      pcre2_match_data_create_from_pattern(code, nullptr));
  std::unique_ptr<pcre2_match_context, MatchContextDeleter> ctx(
      pcre2_match_context_create(nullptr));
  if (!md || !ctx) return Internal(what_ + ": out of memory");
  pcre2_set_match_limit(ctx.get(), kMatchLimit);
  std::vector<std::pair<size_t, size_t>> out;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  while (start <= text.size()) {
    // The text was validated as UTF-8 once by the caller: skip PCRE2's check per call.
    int rc =
        pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md.get(), ctx.get());
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                       md.get(), ctx.get());
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return InvalidArgument(what_ + ": regex match failed: " + PcreError(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      start = e;
    } else {
      // Empty match: step over one whole character.
      size_t next = b + 1;
      while (next < text.size() && (static_cast<unsigned char>(text[next]) & 0xC0) == 0x80) ++next;
      start = next;
    }
  }
  return out;
}

}  // namespace sluice::llm

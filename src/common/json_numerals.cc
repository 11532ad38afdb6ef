#include "common/json_numerals.h"

#include <algorithm>
#include <vector>

namespace sluice {
namespace {

using json = nlohmann::ordered_json;

constexpr int kNumberOverflow = 406;  // nlohmann's out_of_range id for a number beyond a double
constexpr size_t kLiteralShown = 24;  // characters of a long literal in a message
constexpr size_t kPointerShown = 200;  // the last characters of a long pointer in a message

// Where a SAX parse is: the key or the index of the value being read in each open container.
class JsonPath {
 public:
  void Open(bool array) { frames_.push_back({array, 0, ""}); }
  void Close() {
    frames_.pop_back();
    Next();
  }
  void Key(const std::string& key) { frames_.back().key = key; }
  // A value has been read: the next one of an array has the next index.
  void Next() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }
  // RFC 6901: '~' as "~0", '/' as "~1".
  std::string Pointer() const {
    std::string out;
    for (const Frame& f : frames_) {
      out += '/';
      if (f.array) {
        out += std::to_string(f.index);
        continue;
      }
      for (char c : f.key) out += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    }
    return out;
  }

 private:
  struct Frame {
    bool array;
    size_t index;
    std::string key;
  };
  std::vector<Frame> frames_;
};

// nlohmann's DOM builder, but an integer literal that it read as a double (beyond int64 and
// uint64) becomes a numeral, and a number beyond a double's range is found where it is. The
// parser calls the handler by its static type, so hiding the base's members suffices.
class NumeralKeeper : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  using Base = nlohmann::detail::json_sax_dom_parser<json>;
  explicit NumeralKeeper(json& root) : Base(root, /*allow_exceptions_=*/true) {}

  bool null() { return Read(Base::null()); }
  bool boolean(bool v) { return Read(Base::boolean(v)); }
  bool number_integer(json::number_integer_t v) { return Read(Base::number_integer(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return Read(Base::number_unsigned(v)); }
  bool string(json::string_t& v) { return Read(Base::string(v)); }
  bool binary(json::binary_t& v) { return Read(Base::binary(v)); }
  bool number_float(double value, const std::string& literal) {
    const bool integer = std::none_of(literal.begin(), literal.end(),
                                      [](char c) { return c == '.' || c == 'e' || c == 'E'; });
    if (!integer) return Read(Base::number_float(value, literal));
    json::binary_t numeral(std::vector<std::uint8_t>(literal.begin(), literal.end()),
                           kNumeralSubtype);
    return Read(Base::binary(numeral));
  }
  bool start_object(std::size_t n) {
    path_.Open(/*array=*/false);
    return Base::start_object(n);
  }
  bool key(json::string_t& k) {
    path_.Key(k);
    return Base::key(k);
  }
  bool end_object() {
    path_.Close();
    return Base::end_object();
  }
  bool start_array(std::size_t n) {
    path_.Open(/*array=*/true);
    return Base::start_array(n);
  }
  bool end_array() {
    path_.Close();
    return Base::end_array();
  }
  template <class Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& ex) {
    if (ex.id == kNumberOverflow) {
      beyond_ = NumberBeyondDouble{path_.Pointer(), token};
      if (beyond_->pointer.size() > kPointerShown)  // the end names the member
        beyond_->pointer = "..." + beyond_->pointer.substr(beyond_->pointer.size() - kPointerShown);
      if (token.size() > kLiteralShown + 16) {
        beyond_->literal = token.substr(0, kLiteralShown) + "... (" + std::to_string(token.size()) +
                           " characters)";
      }
    }
    return Base::parse_error(position, token, ex);
  }

  const std::optional<NumberBeyondDouble>& beyond() const { return beyond_; }

 private:
  bool Read(bool ok) {
    path_.Next();
    return ok;
  }

  JsonPath path_;
  std::optional<NumberBeyondDouble> beyond_;
};

// `text` read into `root`; nlohmann's message on failure, and in `beyond` a number beyond a
// double's range if that is why.
Status Read(std::string_view text, json& root, std::optional<NumberBeyondDouble>* beyond) {
  NumeralKeeper keeper(root);
  try {
    json::sax_parse(text, &keeper, json::input_format_t::json, /*strict=*/true,
                    /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    *beyond = keeper.beyond();
    return InvalidArgument(e.what());
  }
  return Status::Ok();
}

void Write(const json& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [key, member] : v.items()) {
      if (!first) out += ',';
      first = false;
      out += json(key).dump(-1, ' ', false, json::error_handler_t::replace);
      out += ':';
      Write(member, out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ',';
      Write(v[i], out);
    }
    out += ']';
  } else if (IsNumeral(v)) {
    out += NumeralText(v);
  } else {
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

}  // namespace

Result<json> ParseJsonKeepingNumerals(std::string_view text) {
  json root;
  std::optional<NumberBeyondDouble> beyond;
  Status read = Read(text, root, &beyond);
  if (beyond) return InvalidArgument(beyond->Message());
  RETURN_IF_ERROR(read);
  return root;
}

std::string NumberBeyondDouble::Message() const {
  return "number " + literal + (pointer.empty() ? "" : " at '" + pointer + "'") +
         " is beyond the range of a double (magnitude up to 1.8e308)";
}

std::optional<NumberBeyondDouble> FindNumberBeyondDouble(std::string_view text) {
  json root;
  std::optional<NumberBeyondDouble> beyond;
  (void)Read(text, root, &beyond);
  return beyond;
}

bool IsNumeral(const json& v) {
  return v.is_binary() && v.get_binary().has_subtype() &&
         v.get_binary().subtype() == kNumeralSubtype;
}

std::string NumeralText(const json& v) {
  if (!IsNumeral(v)) return "";
  const json::binary_t& b = v.get_binary();
  return std::string(b.begin(), b.end());
}

std::string DumpKeepingNumerals(const json& v) {
  std::string out;
  Write(v, out);
  return out;
}

}  // namespace sluice

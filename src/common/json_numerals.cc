#include "common/json_numerals.h"

#include <algorithm>

namespace sluice {
namespace {

using json = nlohmann::ordered_json;

// nlohmann's DOM builder, but an integer literal that it read as a double (beyond int64 and
// uint64) becomes a numeral. The parser calls the handler by its static type, so hiding
// number_float suffices.
class NumeralKeeper : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  explicit NumeralKeeper(json& root) : json_sax_dom_parser(root, /*allow_exceptions_=*/true) {}

  bool number_float(double value, const std::string& literal) {
    const bool integer = std::none_of(literal.begin(), literal.end(),
                                      [](char c) { return c == '.' || c == 'e' || c == 'E'; });
    if (!integer) return json_sax_dom_parser::number_float(value, literal);
    json::binary_t numeral(std::vector<std::uint8_t>(literal.begin(), literal.end()),
                           kNumeralSubtype);
    return json_sax_dom_parser::binary(numeral);
  }
};

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
  NumeralKeeper keeper(root);
  try {
    json::sax_parse(text, &keeper, json::input_format_t::json, /*strict=*/true,
                    /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    return InvalidArgument(e.what());
  }
  return root;
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

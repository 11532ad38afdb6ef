#include "common/json_fields.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>

namespace sluice::json_fields {

using nlohmann::json;

Status FieldError(std::string_view field, std::string_view what) {
  return InvalidArgument("'" + std::string(field) + "' " + std::string(what));
}

bool IntegerIn(const json& v, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return false;
  const int64_t x = v.get<int64_t>();
  return x >= lo && x <= hi;
}

bool IsTokenId(const json& v) {
  return IntegerIn(v, 0, INT32_MAX);
}

bool Has(const json& object, std::string_view key) {
  if (!object.is_object()) return false;
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

Result<double> Number(const json& v, std::string_view field) {
  if (!v.is_number()) return FieldError(field, "must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x)) return FieldError(field, "must be finite");
  return x;
}

Result<int64_t> Integer(const json& v, std::string_view field) {
  if (!v.is_number_integer()) return FieldError(field, "must be an integer");
  if (!IntegerIn(v, INT64_MIN, INT64_MAX)) return FieldError(field, "is out of range");
  return v.get<int64_t>();
}

Result<bool> Boolean(const json& v, std::string_view field) {
  if (!v.is_boolean()) return FieldError(field, "must be a boolean");
  return v.get<bool>();
}

Result<std::string> String(const json& v, std::string_view field) {
  if (!v.is_string()) return FieldError(field, "must be a string");
  return v.get<std::string>();
}

Result<std::optional<bool>> OptionalBoolean(const json& object, std::string_view key) {
  if (!Has(object, key)) return std::optional<bool>();
  ASSIGN_OR_RETURN(bool b, Boolean(object[std::string(key)], key));
  return std::optional<bool>(b);
}

Result<double> LenientNumber(const json& v, std::string_view field) {
  if (!v.is_string()) return Number(v, field);
  const std::string& s = v.get_ref<const std::string&>();
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size())
    return FieldError(field, "must be a number, got \"" + s.substr(0, 32) + "\"");
  if (!std::isfinite(x)) return FieldError(field, "must be finite");
  return x;
}

Result<int64_t> LenientInteger(const json& v, std::string_view field) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return FieldError(field, "is out of range");
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    int64_t exact = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), exact);
    if (ec == std::errc() && end == s.data() + s.size()) return exact;
    if (ec == std::errc::result_out_of_range) return FieldError(field, "is out of range");
  }
  ASSIGN_OR_RETURN(double x, LenientNumber(v, field));
  if (x != std::floor(x) || std::fabs(x) > 9.0e15) return FieldError(field, "must be an integer");
  return static_cast<int64_t>(x);
}

Result<int32_t> LenientInt32(const json& v, std::string_view field) {
  ASSIGN_OR_RETURN(int64_t x, LenientInteger(v, field));
  if (x < INT32_MIN || x > INT32_MAX) return FieldError(field, "is out of range");
  return static_cast<int32_t>(x);
}

Result<bool> LenientBoolean(const json& v, std::string_view field) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_string() && (v == "true" || v == "True")) return true;
  if (v.is_string() && (v == "false" || v == "False")) return false;
  return FieldError(field, "must be a boolean");
}

}  // namespace sluice::json_fields

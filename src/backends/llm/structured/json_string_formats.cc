#include "backends/llm/structured/json_string_formats.h"

#include <string_view>

namespace sluice::llm::structured {
namespace {

// RFC 3339's full-date, only real dates: each month its days, February 29 in leap years only
// (divisible by 4, centuries by 400), and no year 0000, which no calendar (Python's date, that
// jsonschema checks "date" with) has. Issue 22's random schemas found "3603-02-31".
constexpr std::string_view kFullDate =
    "(([1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])-((0[13578]|1[02])-(0[1-9]|[12][0-9]|"
    "3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468]["
    "048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)-02-29)";
constexpr std::string_view kPartialTime =
    "([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?";
constexpr std::string_view kTimeOffset = "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";

}  // namespace

std::string FormatRegex(const std::string& f) {
  if (f == "date") return std::string(kFullDate);
  if (f == "time") return std::string(kPartialTime) + std::string(kTimeOffset);
  if (f == "date-time")
    return std::string(kFullDate) + "T" + std::string(kPartialTime) + std::string(kTimeOffset);
  if (f == "uuid") {
    return "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
  }
  if (f == "email") {
    return "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-zA-Z0-9!#$%&'*+/"
           "=?^_`{|}~-]+)*@[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-"
           "zA-Z0-9])?)+";
  }
  return "";
}

}  // namespace sluice::llm::structured

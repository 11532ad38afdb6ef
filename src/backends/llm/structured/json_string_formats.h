#pragma once
// JSON Schema's string `format`s that the compiler knows (json_schema_compiler.h), as regular
// expressions over the string's characters (regex_compiler.h): date, time, date-time (RFC
// 3339: real dates only, as Python's datetime, which jsonschema checks them with), uuid and
// email.

#include <string>

namespace sluice::llm::structured {

// The format's regular expression; empty for a format not known.
std::string FormatRegex(const std::string& format);

}  // namespace sluice::llm::structured

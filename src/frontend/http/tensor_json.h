#pragma once
// Tensor data <-> JSON values for KServe v2 (`data` arrays, flat or nested, row-major) and
// the generate extension. FP16/BF16 travel as JSON numbers and are converted to and from
// their bit patterns (round to nearest even), as Triton does.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/data_type.h"
#include "common/inference.h"
#include "common/status.h"
#include "common/tensor.h"

namespace sluice::http {

// How strictly JSON values must match the datatype. kStrict (KServe infer): BOOL takes
// booleans, integer types take integers in range, floats take numbers, BYTES takes strings.
// kLenient (generate): also bool<->number, integral floats to ints, and any value to BYTES
// (non-strings as their JSON text).
enum class JsonConversion { kStrict, kLenient };

// Appends the serialization of `value` (a scalar, or an array nested at most as deep as the
// parser allowed) to `out`, counting elements in `*count`; fails once more than
// `max_elements` are seen. The error names `tensor_name`.
Status AppendJsonData(const nlohmann::json& value, DataType datatype, JsonConversion conversion,
                      const std::string& tensor_name, int64_t max_elements, int64_t* count,
                      std::string* out);

// The tensor's elements as a flat JSON array (BYTES as strings; invalid UTF-8 is replaced
// when dumped). Error if the data is inconsistent with the shape.
Result<nlohmann::json> TensorToJsonArray(const Tensor& tensor);

// KServe `parameters` objects <-> Parameters. Values must be bool, integer, number or string.
Result<Parameters> ParametersFromJson(const nlohmann::json& object, const std::string& where);
nlohmann::json ParametersToJson(const Parameters& parameters);
Result<ParameterValue> ParameterFromJson(const nlohmann::json& value, const std::string& name);

uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

}  // namespace sluice::http

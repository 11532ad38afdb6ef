#include "frontend/http/tensor_json.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

namespace sluice::http {
namespace {

static_assert(std::endian::native == std::endian::little, "tensor bytes are little-endian");

template <typename T>
void AppendRaw(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

Status TypeError(const std::string& tensor, DataType dt, const nlohmann::json& v) {
  std::string shown = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (shown.size() > 64) shown = shown.substr(0, 64) + "...";
  return InvalidArgument("tensor '" + tensor + "': value " + shown + " is not valid " +
                         std::string(DataTypeName(dt)) + " data");
}

// Reads an integer in [lo, hi]; lenient also takes bools and integral floats.
template <typename T>
Status AppendInt(const nlohmann::json& v, DataType dt, JsonConversion conv, const std::string& name,
                 std::string* out) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return TypeError(name, dt, v);
    AppendRaw<T>(out, static_cast<T>(u));
    return Status::Ok();
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (i < 0 || static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return TypeError(name, dt, v);
    } else {
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<int64_t>(std::numeric_limits<T>::max()))
        return TypeError(name, dt, v);
    }
    AppendRaw<T>(out, static_cast<T>(i));
    return Status::Ok();
  }
  if (conv == JsonConversion::kLenient) {
    if (v.is_boolean()) {
      AppendRaw<T>(out, static_cast<T>(v.get<bool>() ? 1 : 0));
      return Status::Ok();
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d == std::trunc(d) && d >= static_cast<double>(std::numeric_limits<T>::min()) &&
          d <= static_cast<double>(std::numeric_limits<T>::max())) {
        AppendRaw<T>(out, static_cast<T>(d));
        return Status::Ok();
      }
    }
  }
  return TypeError(name, dt, v);
}

Result<double> NumberOf(const nlohmann::json& v, DataType dt, JsonConversion conv, const std::string& name) {
  if (v.is_number()) return v.get<double>();
  if (conv == JsonConversion::kLenient && v.is_boolean()) return v.get<bool>() ? 1.0 : 0.0;
  return TypeError(name, dt, v);
}

Status AppendScalar(const nlohmann::json& v, DataType dt, JsonConversion conv, const std::string& name,
                    std::string* out) {
  switch (dt) {
    case DataType::kBool:
      if (v.is_boolean()) {
        out->push_back(v.get<bool>() ? 1 : 0);
        return Status::Ok();
      }
      if (conv == JsonConversion::kLenient && v.is_number()) {
        out->push_back(v.get<double>() != 0 ? 1 : 0);
        return Status::Ok();
      }
      return TypeError(name, dt, v);
    case DataType::kUint8: return AppendInt<uint8_t>(v, dt, conv, name, out);
    case DataType::kUint16: return AppendInt<uint16_t>(v, dt, conv, name, out);
    case DataType::kUint32: return AppendInt<uint32_t>(v, dt, conv, name, out);
    case DataType::kUint64: return AppendInt<uint64_t>(v, dt, conv, name, out);
    case DataType::kInt8: return AppendInt<int8_t>(v, dt, conv, name, out);
    case DataType::kInt16: return AppendInt<int16_t>(v, dt, conv, name, out);
    case DataType::kInt32: return AppendInt<int32_t>(v, dt, conv, name, out);
    case DataType::kInt64: return AppendInt<int64_t>(v, dt, conv, name, out);
    case DataType::kFp16: {
      ASSIGN_OR_RETURN(double d, NumberOf(v, dt, conv, name));
      AppendRaw<uint16_t>(out, FloatToHalf(static_cast<float>(d)));
      return Status::Ok();
    }
    case DataType::kBf16: {
      ASSIGN_OR_RETURN(double d, NumberOf(v, dt, conv, name));
      AppendRaw<uint16_t>(out, FloatToBf16(static_cast<float>(d)));
      return Status::Ok();
    }
    case DataType::kFp32: {
      ASSIGN_OR_RETURN(double d, NumberOf(v, dt, conv, name));
      AppendRaw<float>(out, static_cast<float>(d));
      return Status::Ok();
    }
    case DataType::kFp64: {
      ASSIGN_OR_RETURN(double d, NumberOf(v, dt, conv, name));
      AppendRaw<double>(out, d);
      return Status::Ok();
    }
    case DataType::kBytes:
      if (v.is_string()) {
        AppendBytesElement(*out, v.get_ref<const std::string&>());
        return Status::Ok();
      }
      if (conv == JsonConversion::kLenient) {
        AppendBytesElement(*out, v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        return Status::Ok();
      }
      return TypeError(name, dt, v);
    case DataType::kInvalid: return InvalidArgument("tensor '" + name + "' has an invalid datatype");
  }
  return InvalidArgument("tensor '" + name + "' has an invalid datatype");
}

template <typename T>
T ReadRaw(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

Status AppendJsonData(const nlohmann::json& value, DataType datatype, JsonConversion conversion,
                      const std::string& tensor_name, int64_t max_elements, int64_t* count,
                      std::string* out) {
  if (value.is_array()) {
    for (const auto& element : value)
      RETURN_IF_ERROR(AppendJsonData(element, datatype, conversion, tensor_name, max_elements, count, out));
    return Status::Ok();
  }
  if (conversion == JsonConversion::kStrict && value.is_object()) return TypeError(tensor_name, datatype, value);
  if (*count >= max_elements)
    return InvalidArgument("tensor '" + tensor_name + "': more than " + std::to_string(max_elements) +
                           " data elements");
  ++*count;
  return AppendScalar(value, datatype, conversion, tensor_name, out);
}

Result<nlohmann::json> TensorToJsonArray(const Tensor& t) {
  RETURN_IF_ERROR(ValidateTensorData(t));
  nlohmann::json arr = nlohmann::json::array();
  if (t.datatype == DataType::kBytes) {
    ASSIGN_OR_RETURN(auto elements, SplitBytesElements(t.data));
    for (auto e : elements) arr.push_back(std::string(e));
    return arr;
  }
  const size_t size = DataTypeSize(t.datatype);
  for (size_t off = 0; off + size <= t.data.size(); off += size) {
    const char* p = t.data.data() + off;
    switch (t.datatype) {
      case DataType::kBool: arr.push_back(*p != 0); break;
      case DataType::kUint8: arr.push_back(ReadRaw<uint8_t>(p)); break;
      case DataType::kUint16: arr.push_back(ReadRaw<uint16_t>(p)); break;
      case DataType::kUint32: arr.push_back(ReadRaw<uint32_t>(p)); break;
      case DataType::kUint64: arr.push_back(ReadRaw<uint64_t>(p)); break;
      case DataType::kInt8: arr.push_back(ReadRaw<int8_t>(p)); break;
      case DataType::kInt16: arr.push_back(ReadRaw<int16_t>(p)); break;
      case DataType::kInt32: arr.push_back(ReadRaw<int32_t>(p)); break;
      case DataType::kInt64: arr.push_back(ReadRaw<int64_t>(p)); break;
      case DataType::kFp16: arr.push_back(HalfToFloat(ReadRaw<uint16_t>(p))); break;
      case DataType::kBf16: arr.push_back(Bf16ToFloat(ReadRaw<uint16_t>(p))); break;
      case DataType::kFp32: arr.push_back(ReadRaw<float>(p)); break;
      case DataType::kFp64: arr.push_back(ReadRaw<double>(p)); break;
      case DataType::kBytes:
      case DataType::kInvalid: return Internal("tensor '" + t.name + "': unexpected datatype");
    }
  }
  return arr;
}

Result<ParameterValue> ParameterFromJson(const nlohmann::json& v, const std::string& name) {
  if (v.is_boolean()) return ParameterValue(v.get<bool>());
  if (v.is_number_integer() && !v.is_number_unsigned()) return ParameterValue(v.get<int64_t>());
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      return ParameterValue(static_cast<int64_t>(u));
    return ParameterValue(static_cast<double>(u));
  }
  if (v.is_number()) return ParameterValue(v.get<double>());
  if (v.is_string()) return ParameterValue(v.get<std::string>());
  return InvalidArgument("parameter '" + name + "' must be a bool, number or string");
}

Result<Parameters> ParametersFromJson(const nlohmann::json& object, const std::string& where) {
  if (!object.is_object()) return InvalidArgument(where + ": 'parameters' must be a JSON object");
  Parameters out;
  for (const auto& [key, value] : object.items()) {
    ASSIGN_OR_RETURN(ParameterValue pv, ParameterFromJson(value, key));
    out[key] = std::move(pv);
  }
  return out;
}

nlohmann::json ParametersToJson(const Parameters& parameters) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : parameters)
    std::visit([&j, &name = key](const auto& v) { j[name] = v; }, value);
  return j;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000;
  const uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  const int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // a carry rounds up the exponent
  return static_cast<uint16_t>(half);
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  if (exp == 0) {
    const float f = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -f : f;
  }
  const uint32_t x = exp == 0x1f ? (sign | 0x7f800000 | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7f800000) == 0x7f800000 && (x & 0x7fffff)) return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t x = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace sluice::http

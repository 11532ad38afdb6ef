// BYTES tensor data (common/tensor.h): Triton's 4-byte length-prefixed serialization.
// Invariants: SplitBytesElements accepts exactly what ValidateTensorData accepts for a BYTES
// tensor of that many elements, re-serializing the elements gives the input back, and the
// KServe JSON rendering (frontend/http/tensor_json.h) has one string per element.

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/tensor.h"
#include "frontend/http/json_util.h"
#include "frontend/http/tensor_json.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string_view input = fuzz::AsText(data, size);
  auto elements = SplitBytesElements(input);

  Tensor t;
  t.name = "INPUT0";
  t.datatype = DataType::kBytes;
  t.data = std::string(input);
  if (!elements.ok()) {
    // No element count makes invalid framing valid.
    t.shape = {static_cast<int64_t>(size / 4)};
    FUZZ_CHECK(!ValidateTensorData(t).ok(), "ValidateTensorData accepted what SplitBytesElements refused");
    return 0;
  }
  std::string again;
  for (std::string_view e : *elements) AppendBytesElement(again, e);
  FUZZ_CHECK(again == input, "re-serialized BYTES differ from the input");

  const int64_t n = static_cast<int64_t>(elements->size());
  t.shape = {n};
  Status valid = ValidateTensorData(t);
  FUZZ_CHECK(valid.ok(), valid.message());
  auto json = http::TensorToJsonArray(t);
  FUZZ_CHECK(json.ok(), json.status().message());
  FUZZ_CHECK(json->size() == elements->size(), "JSON element count differs");
  (void)http::DumpJson(*json);  // invalid UTF-8 is replaced, never thrown
  t.shape = {1, n};
  FUZZ_CHECK(ValidateTensorData(t).ok(), "shape [1,n] refused");
  t.shape = {n + 1};
  FUZZ_CHECK(!ValidateTensorData(t).ok(), "one element too many accepted");
  if (n > 0) {
    t.shape = {n - 1};
    FUZZ_CHECK(!ValidateTensorData(t).ok(), "one element too few accepted");
  }
  return 0;
}

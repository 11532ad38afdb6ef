// Model configurations (core/repository_model_config.h): config.pbtxt (protobuf text format,
// as in a repository) and the JSON form (a load override's `parameters.config`); each input
// is read as both. Invariant: a config that parses and normalizes renders to JSON that
// parses back to the same config (the same JSON value), and normalizing is idempotent.

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/repository_model_config.h"
#include "fuzz_check.h"

namespace {

void RoundTrip(sluice::Result<inference::ModelConfig> parsed) {
  using namespace sluice;
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty(), "an error without a message");
    return;
  }
  inference::ModelConfig config = std::move(*parsed);
  if (!core::NormalizeModelConfig("fuzz", config).ok()) return;
  auto json = core::ModelConfigToJson(config);
  FUZZ_CHECK(json.ok(), json.status().message());
  auto again = core::ParseModelConfigJson(*json);
  FUZZ_CHECK(again.ok(), again.status().message() + " in " + *json);
  Status normalized = core::NormalizeModelConfig("fuzz", *again);
  FUZZ_CHECK(normalized.ok(), normalized.message() + " in " + *json);
  auto json_again = core::ModelConfigToJson(*again);
  FUZZ_CHECK(json_again.ok(), json_again.status().message());
  // Compared as JSON values: protobuf renders map entries (parameters, ...) in its maps'
  // iteration order, which depends on how the map was filled.
  FUZZ_CHECK(nlohmann::json::parse(*json_again) == nlohmann::json::parse(*json), "JSON round trip differs: " + *json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sluice;
  const std::string_view text = fuzz::AsText(data, size);
  RoundTrip(core::ParseModelConfigText(text));
  RoundTrip(core::ParseModelConfigJson(text));
  return 0;
}

#include "common/access_policy.h"

#include <algorithm>
#include <cctype>

namespace sluice {
namespace {

constexpr std::array<std::pair<ApiCategory, std::string_view>, kApiCategoryCount> kNames{{
    {ApiCategory::kHealth, "health"},
    {ApiCategory::kMetadata, "metadata"},
    {ApiCategory::kInference, "inference"},
    {ApiCategory::kSharedMemory, "shared-memory"},
    {ApiCategory::kModelConfig, "model-config"},
    {ApiCategory::kModelRepository, "model-repository"},
    {ApiCategory::kStatistics, "statistics"},
    {ApiCategory::kTrace, "trace"},
    {ApiCategory::kLogging, "logging"},
}};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

size_t Index(ApiCategory category) {
  return static_cast<size_t>(category);
}

}  // namespace

std::string_view ApiCategoryName(ApiCategory category) {
  switch (category) {
    case ApiCategory::kHealth:
      return "health";
    case ApiCategory::kMetadata:
      return "metadata";
    case ApiCategory::kInference:
      return "inference";
    case ApiCategory::kSharedMemory:
      return "shared-memory";
    case ApiCategory::kModelConfig:
      return "model-config";
    case ApiCategory::kModelRepository:
      return "model-repository";
    case ApiCategory::kStatistics:
      return "statistics";
    case ApiCategory::kTrace:
      return "trace";
    case ApiCategory::kLogging:
      return "logging";
  }
  return "unknown";
}

std::optional<ApiCategory> ApiCategoryFromName(std::string_view name) {
  for (const auto& [category, spelled] : kNames)
    if (spelled == name) return category;
  return std::nullopt;
}

Result<ApiRestriction> ParseApiRestriction(std::string_view spec) {
  const std::string shown(spec.substr(0, 256));
  const size_t colon = spec.find(':');
  if (colon == std::string_view::npos)
    return InvalidArgument("restricted API '" + shown + "': expected <api1>,<api2>:<key>=<value>");
  ApiRestriction out;
  std::string_view apis = spec.substr(0, colon);
  while (true) {
    const size_t comma = apis.find(',');
    const std::string_view name = Trim(apis.substr(0, comma));
    auto category = ApiCategoryFromName(name);
    if (!category)
      return InvalidArgument(
          "restricted API '" + shown + "': unknown API category '" +
          std::string(name.substr(0, 64)) +
          "' (model-repository, model-config, shared-memory, statistics, trace, logging, "
          "health, metadata, inference)");
    if (std::find(out.categories.begin(), out.categories.end(), *category) == out.categories.end())
      out.categories.push_back(*category);
    if (comma == std::string_view::npos) break;
    apis.remove_prefix(comma + 1);
  }
  const std::string_view key_value = spec.substr(colon + 1);
  const size_t eq = key_value.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("restricted API '" + shown + "': expected <key>=<value> after ':'");
  out.key = Lower(Trim(key_value.substr(0, eq)));
  out.value = std::string(key_value.substr(eq + 1));
  if (out.key.empty())
    return InvalidArgument("restricted API '" + shown + "': the header key is empty");
  return out;
}

Result<std::unique_ptr<AccessPolicy>> AccessPolicy::Create(AccessPolicyOptions options) {
  std::array<int, kApiCategoryCount> seen{};
  seen.fill(-1);
  for (size_t i = 0; i < options.restrictions.size(); ++i) {
    const ApiRestriction& r = options.restrictions[i];
    if (r.key.empty())
      return InvalidArgument("restricted API group " + std::to_string(i) +
                             ": the header key is empty");
    for (ApiCategory c : r.categories) {
      if (seen[Index(c)] >= 0)
        return InvalidArgument("restricted API '" + std::string(ApiCategoryName(c)) +
                               "' can not be specified in multiple config groups");
      seen[Index(c)] = static_cast<int>(i);
    }
  }
  auto policy = std::unique_ptr<AccessPolicy>(new AccessPolicy(std::move(options)));
  policy->restriction_index_ = seen;
  return policy;
}

AccessPolicy::AccessPolicy(AccessPolicyOptions options) : options_(std::move(options)) {}

const ApiRestriction* AccessPolicy::RestrictionOf(ApiCategory category) const {
  const int i = restriction_index_[Index(category)];
  return i < 0 ? nullptr : &options_.restrictions[static_cast<size_t>(i)];
}

AccessDecision AccessPolicy::Authorize(ApiCategory category, const HeaderLookup& header) const {
  const bool key_needed = !options_.api_key.empty() &&
                          !(category == ApiCategory::kHealth && options_.api_key_exempt_health);
  if (key_needed) {
    std::optional<std::string_view> authorization = header("authorization");
    std::optional<std::string_view> token =
        authorization ? BearerToken(*authorization) : std::nullopt;
    // Compare even when no token came, so the two failures take the same time.
    const bool match = ConstantTimeEquals(options_.api_key, token.value_or(std::string_view()));
    if (!token || !match) return {AccessDecision::Kind::kUnauthenticated, kUnauthenticatedMessage};
  }
  if (const ApiRestriction* r = RestrictionOf(category)) {
    std::optional<std::string_view> given = header(r->key);
    if (!given || !ConstantTimeEquals(r->value, *given))
      return {AccessDecision::Kind::kForbidden,
              "This API is restricted, expecting header '" + r->key + "'"};
  }
  return {};
}

bool ConstantTimeEquals(std::string_view secret, std::string_view given) {
  // Every byte of `given` is compared against the secret (cycled), and the length
  // difference folds into the result: no early exit, no branch on the data.
  volatile unsigned char diff = secret.size() == given.size() ? 0 : 1;
  if (secret.empty()) return given.empty();
  for (size_t i = 0; i < given.size(); ++i)
    diff =
        static_cast<unsigned char>(diff | (static_cast<unsigned char>(secret[i % secret.size()]) ^
                                           static_cast<unsigned char>(given[i])));
  return diff == 0;
}

std::optional<std::string_view> BearerToken(std::string_view authorization) {
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i])
      return std::nullopt;
  if (authorization[kScheme.size()] != ' ' && authorization[kScheme.size()] != '\t')
    return std::nullopt;
  std::string_view token = Trim(authorization.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace sluice

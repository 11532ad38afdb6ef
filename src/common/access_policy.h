#pragma once
// Who may call which API: the API key (vLLM's --api-key, sent as `Authorization: Bearer
// <key>`) and Triton's restricted API categories (--http-restricted-api /
// --grpc-restricted-protocol, `<api1>,<api2>:<key>=<value>`, the request must carry header
// or metadata `key: value`). Protocol-neutral: each frontend maps its routes or RPCs to an
// ApiCategory, hands the request's headers through a lookup function, and renders the
// Decision (HTTP 401/403, gRPC UNAUTHENTICATED/PERMISSION_DENIED).
//
// Thread-safety: immutable after Create; Authorize may run on any thread concurrently.
// Secrets: the key is compared in constant time and never appears in a message or a log.

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace sluice {

// Triton's categories of restricted APIs, the same for HTTP and gRPC.
enum class ApiCategory {
  kHealth,
  kMetadata,
  kInference,
  kSharedMemory,
  kModelConfig,
  kModelRepository,
  kStatistics,
  kTrace,
  kLogging,
};
inline constexpr size_t kApiCategoryCount = 9;

// Triton's spelling: "model-repository", "health", ...
std::string_view ApiCategoryName(ApiCategory category);
std::optional<ApiCategory> ApiCategoryFromName(std::string_view name);

// One restriction group: these categories need header `key` (lower-case) equal to `value`.
struct ApiRestriction {
  std::vector<ApiCategory> categories;
  std::string key;
  std::string value;
};

// Parses Triton's `<api1>,<api2>:<key>=<value>`; errors name the offending part.
Result<ApiRestriction> ParseApiRestriction(std::string_view spec);

struct AccessPolicyOptions {
  // Empty: no key required.
  std::string api_key;
  // When true, health routes / RPCs need no key (Kubernetes probes send none).
  bool api_key_exempt_health = true;
  // Each category in at most one group.
  std::vector<ApiRestriction> restrictions;
};

// What a request may do; the message is safe to send to the client.
struct AccessDecision {
  enum class Kind { kAllow, kUnauthenticated, kForbidden };
  Kind kind = Kind::kAllow;
  std::string message;
  bool allowed() const { return kind == Kind::kAllow; }
};

class AccessPolicy {
 public:
  // Returns the value of a header / metadata entry by lower-case name, nullopt if absent.
  using HeaderLookup = std::function<std::optional<std::string_view>(std::string_view lower_name)>;

  // Fails if a category is restricted twice or a restriction has an empty key.
  static Result<std::unique_ptr<AccessPolicy>> Create(AccessPolicyOptions options);

  // First the API key (401), then the category's restriction (403).
  AccessDecision Authorize(ApiCategory category, const HeaderLookup& header) const;

  bool requires_api_key() const { return !options_.api_key.empty(); }
  bool api_key_exempt_health() const { return options_.api_key_exempt_health; }
  // The restriction on `category`, or nullptr.
  const ApiRestriction* RestrictionOf(ApiCategory category) const;

 private:
  explicit AccessPolicy(AccessPolicyOptions options);

  // Constant after construction.
  const AccessPolicyOptions options_;
  std::array<int, kApiCategoryCount> restriction_index_{};  // -1: unrestricted
};

// Equality whose running time depends only on the length of `given` (never on where the
// strings differ, nor on the secret's length).
bool ConstantTimeEquals(std::string_view secret, std::string_view given);

// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive), or
// nullopt for another scheme or an empty token.
std::optional<std::string_view> BearerToken(std::string_view authorization);

inline constexpr char kUnauthenticatedMessage[] =
    "Unauthorized: missing or invalid API key (send 'Authorization: Bearer <key>')";

}  // namespace sluice

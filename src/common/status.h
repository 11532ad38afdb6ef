#pragma once
// Errors are values: every fallible function returns Status or Result<T>.
// No exception crosses a module, process or IPC boundary (STYLE.md §6).

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sluice {

// Error categories. Each frontend maps them to its protocol in one place
// (HTTP: frontend/http/http_status.cc, gRPC: frontend/grpc/grpc_status.cc).
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,  // HTTP 400, gRPC INVALID_ARGUMENT
  kNotFound,         // 404, NOT_FOUND
  kAlreadyExists,    // 400 (Triton), ALREADY_EXISTS
  kUnavailable,      // 503, UNAVAILABLE
  kUnsupported,      // 501, UNIMPLEMENTED
  kInternal,         // 500, INTERNAL
  kCancelled,        // 400 (Triton), CANCELLED
  kDeadlineExceeded, // 504, DEADLINE_EXCEEDED
  kResourceExhausted,// 429/400, RESOURCE_EXHAUSTED
  kUnknown,          // 400 (Triton), UNKNOWN
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "<CODE>: message", for logs.
  std::string ToString() const;
  // Returns a status with `prefix: ` prepended to the message, same code (and param).
  Status WithPrefix(std::string_view prefix) const;
  // The request field an error is about, in OpenAI's notation ("messages.[2].tool_call_id"),
  // for the frontends that report it (OpenAI's error `param`); empty: none named. It stays in
  // the process: the IPC carries code and message only.
  const std::string& param() const { return param_; }
  Status WithParam(std::string param) const;

  bool operator==(const Status& other) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string param_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status DeadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }

// Result<T>: a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: must not be OK

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sluice

#define SLUICE_CONCAT_INNER(a, b) a##b
#define SLUICE_CONCAT(a, b) SLUICE_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                       \
  do {                                              \
    ::sluice::Status _st = (expr);                  \
    if (!_st.ok()) return _st;                      \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL(SLUICE_CONCAT(_result_, __LINE__), lhs, expr)

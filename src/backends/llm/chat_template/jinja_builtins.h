#pragma once
// The filters, tests, methods and global functions a chat template may call. All are
// pure functions of sandbox values (no I/O, no host objects); results are size-capped.

#include <string>
#include <utility>
#include <vector>

#include "backends/llm/chat_template/jinja_value.h"
#include "common/status.h"

namespace sluice::llm::jinja {

using Args = std::vector<Value>;
using Kwargs = std::vector<std::pair<std::string, Value>>;

// Largest string or list a builtin may produce.
inline constexpr size_t kMaxBuiltinResult = 16u << 20;

// `x | name(args)`. Unknown filters are an error naming the filter.
Result<Value> ApplyFilter(const std::string& name, const Value& subject, const Args& args,
                          const Kwargs& kwargs);

// `x is name(args)`.
Result<bool> ApplyTest(const std::string& name, const Value& subject, const Args& args);

// `obj.name(args)` for string and dict methods (startswith, split, items, get, ...).
Result<Value> CallMethod(const Value& obj, const std::string& name, const Args& args,
                         const Kwargs& kwargs);

// Global functions: range, namespace, dict, strftime_now. (raise_exception is handled
// by the interpreter.) Returns NotFound when `name` is not one.
Result<Value> CallGlobal(const std::string& name, const Args& args, const Kwargs& kwargs);

// Python-style ordering of two numbers or two strings; InvalidArgument otherwise.
Result<int> Compare(const Value& a, const Value& b);

}  // namespace sluice::llm::jinja

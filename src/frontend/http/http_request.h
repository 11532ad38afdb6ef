#pragma once
// One parsed HTTP request as handlers see it: protocol-neutral of Beast, so handlers can be
// unit-tested without a socket.

#include <map>
#include <string>
#include <string_view>

namespace sluice::http {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: path plus "?query"
  std::string path;    // target without the query
  std::string query;   // after '?', undecoded; empty when none
  std::map<std::string, std::string, std::less<>> headers;  // names lower-case
  std::string body;    // de-chunked, at most the server's body limit
  std::map<std::string, std::string, std::less<>> path_params;  // filled by the Router

  // Header value by lower-case name; empty when absent.
  std::string_view Header(std::string_view lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string_view() : std::string_view(it->second);
  }
  // Path parameter by name (`{model}` -> "model"); empty when absent.
  std::string_view Param(std::string_view name) const {
    auto it = path_params.find(name);
    return it == path_params.end() ? std::string_view() : std::string_view(it->second);
  }
};

}  // namespace sluice::http

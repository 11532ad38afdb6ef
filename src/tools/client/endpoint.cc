#include "tools/client/endpoint.h"

#include <charconv>

namespace sluice::client {

Result<Endpoint> ParseEndpoint(std::string_view url, uint16_t default_port) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return InvalidArgument("endpoint '" + std::string(url) + "': only http:// is supported");
  }
  while (rest.ends_with('/')) rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) {
    return InvalidArgument("endpoint '" + std::string(url) + "': must not contain a path");
  }
  Endpoint ep;
  ep.port = default_port;
  std::string_view host = rest;
  if (rest.starts_with('[')) {  // [v6]:port
    size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return InvalidArgument("endpoint '" + std::string(url) + "': unclosed '['");
    }
    host = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      return InvalidArgument("endpoint '" + std::string(url) + "': junk after ']'");
    }
  } else {
    size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon);
  }
  if (!rest.empty()) {
    std::string_view port = rest.substr(1);
    unsigned value = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
      return InvalidArgument("endpoint '" + std::string(url) + "': bad port '" +
                             std::string(port) + "'");
    }
    ep.port = static_cast<uint16_t>(value);
  }
  if (host.empty()) return InvalidArgument("endpoint '" + std::string(url) + "': empty host");
  ep.host = std::string(host);
  return ep;
}

}  // namespace sluice::client

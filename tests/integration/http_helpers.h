#pragma once
// Small HTTP conveniences over sluice_client for integration tests.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "tools/client/http_client.h"

namespace sluice::testing {

inline std::unique_ptr<client::HttpClient> Http(int port) {
  return client::HttpClient::Create({"127.0.0.1", static_cast<uint16_t>(port)});
}

// The repository index row of (model, version); null json if absent.
inline nlohmann::json IndexRow(client::HttpClient& http, const std::string& model, const std::string& version = "1") {
  auto r = http.Post("/v2/repository/index", "");
  if (!r.ok() || r->status != 200) return nullptr;
  auto rows = nlohmann::json::parse(r->body, nullptr, false);
  if (!rows.is_array()) return nullptr;
  for (auto& row : rows)
    if (row.value("name", "") == model && (version.empty() || row.value("version", "") == version)) return row;
  return nullptr;
}

inline std::string StateOf(client::HttpClient& http, const std::string& model, const std::string& version = "1") {
  auto row = IndexRow(http, model, version);
  return row.is_null() ? "" : row.value("state", "");
}

inline bool WaitForState(client::HttpClient& http, const std::string& model, const std::string& state,
                         std::chrono::milliseconds timeout, const std::string& version = "1") {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (StateOf(http, model, version) == state) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

inline int Load(client::HttpClient& http, const std::string& model, const std::string& body = "") {
  auto r = http.Post("/v2/repository/models/" + model + "/load", body);
  return r.ok() ? r->status : -1;
}

inline int Unload(client::HttpClient& http, const std::string& model, const std::string& body = "") {
  auto r = http.Post("/v2/repository/models/" + model + "/unload", body);
  return r.ok() ? r->status : -1;
}

// A KServe v2 JSON infer body for the test identity model.
inline std::string IdentityBody(int n = 4) {
  nlohmann::json data = nlohmann::json::array();
  for (int i = 0; i < n; ++i) data.push_back(i);
  return nlohmann::json{{"inputs", {{{"name", "INPUT0"}, {"datatype", "INT32"}, {"shape", {n}}, {"data", data}}}}}
      .dump();
}

// A generate body for the test repeat model: `count` responses, `delay_ms` apart.
inline std::string RepeatBody(int count, int delay_ms, int wait_ms = 0) {
  nlohmann::json in = nlohmann::json::array(), delay = nlohmann::json::array();
  for (int i = 0; i < count; ++i) {
    in.push_back(i);
    delay.push_back(delay_ms);
  }
  return nlohmann::json{{"IN", in}, {"DELAY", delay}, {"WAIT", {wait_ms}}}.dump();
}

}  // namespace sluice::testing

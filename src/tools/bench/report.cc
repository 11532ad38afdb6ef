#include "tools/bench/report.h"

#include <cstdio>

namespace sluice::bench {

BenchSummary Summarize(const std::vector<RequestResult>& results, double duration_s) {
  BenchSummary s;
  s.duration_s = duration_s;
  std::vector<double> ttft, tpot, itl, e2el, in_len, out_len;
  size_t from_usage = 0;
  for (const RequestResult& r : results) {
    if (!r.ok) {
      ++s.failed;
      auto it = s.errors.find(r.error);
      if (it != s.errors.end()) {
        it->second++;
      } else if (s.errors.size() < 20) {
        s.errors[r.error] = 1;
      }
      continue;
    }
    ++s.completed;
    s.total_input_tokens += r.prompt_tokens;
    s.total_output_tokens += r.output_tokens;
    in_len.push_back(static_cast<double>(r.prompt_tokens));
    out_len.push_back(static_cast<double>(r.output_tokens));
    if (r.tokens_from_usage) ++from_usage;
    e2el.push_back(r.latency_s * 1e3);
    if (r.streamed) {
      ttft.push_back(r.ttft_s * 1e3);
      for (double g : r.itl_s) itl.push_back(g * 1e3);
      if (auto t = r.Tpot()) tpot.push_back(*t * 1e3);
    }
  }
  if (duration_s > 0) {
    s.request_throughput = static_cast<double>(s.completed) / duration_s;
    s.output_throughput = static_cast<double>(s.total_output_tokens) / duration_s;
    s.total_token_throughput =
        static_cast<double>(s.total_input_tokens + s.total_output_tokens) / duration_s;
  }
  s.ttft_ms = Describe(ttft);
  s.tpot_ms = Describe(tpot);
  s.itl_ms = Describe(itl);
  s.e2el_ms = Describe(e2el);
  s.input_len = Describe(in_len);
  s.output_len = Describe(out_len);
  s.token_source = s.completed == 0           ? "none"
                   : from_usage == s.completed ? "usage"
                   : from_usage == 0           ? "chunks"
                                               : "mixed";
  return s;
}

namespace {

void PutDistribution(nlohmann::json& j, const std::string& name, const Distribution& d) {
  j["mean_" + name] = d.mean;
  j["median_" + name] = d.median;
  j["std_" + name] = d.stddev;
  j["p90_" + name] = d.p90;
  j["p99_" + name] = d.p99;
  j["min_" + name] = d.min;
  j["max_" + name] = d.max;
}

}  // namespace

nlohmann::json ReportJson(const BenchSummary& s, const nlohmann::json& config) {
  nlohmann::json j = nlohmann::json::object();
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["duration"] = s.duration_s;
  j["total_input_tokens"] = s.total_input_tokens;
  j["total_output_tokens"] = s.total_output_tokens;
  j["request_throughput"] = s.request_throughput;
  j["output_throughput"] = s.output_throughput;
  j["total_token_throughput"] = s.total_token_throughput;
  j["token_source"] = s.token_source;
  PutDistribution(j, "ttft_ms", s.ttft_ms);
  PutDistribution(j, "tpot_ms", s.tpot_ms);
  PutDistribution(j, "itl_ms", s.itl_ms);
  PutDistribution(j, "e2el_ms", s.e2el_ms);
  PutDistribution(j, "input_len", s.input_len);
  PutDistribution(j, "output_len", s.output_len);
  j["errors"] = nlohmann::json::object();
  for (const auto& [msg, n] : s.errors) j["errors"][msg] = n;
  j["config"] = config;
  return j;
}

namespace {

void Line(std::string& out, const char* label, const std::string& value) {
  char buf[160];
  snprintf(buf, sizeof buf, "%-40s %s\n", label, value.c_str());
  out += buf;
}

std::string Num(double v, int decimals = 2) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

void Section(std::string& out, const char* title, const char* unit, const Distribution& d) {
  std::string head = title;
  size_t pad = head.size() < 48 ? (48 - head.size()) / 2 : 1;
  out += std::string(pad, '-') + head + std::string(pad, '-') + "\n";
  const std::pair<const char*, double> rows[] = {
      {"Mean", d.mean}, {"Median", d.median}, {"P90", d.p90}, {"P99", d.p99},
      {"Min", d.min},   {"Max", d.max},       {"Std", d.stddev}};
  for (const auto& [name, v] : rows) {
    std::string label = std::string(name) + " " + unit + ":";
    Line(out, label.c_str(), Num(v));
  }
}

}  // namespace

std::string FormatReport(const BenchSummary& s, const std::string& title) {
  std::string out;
  std::string head = " " + title + " ";
  size_t pad = head.size() < 50 ? (50 - head.size()) / 2 : 0;
  out += std::string(pad, '=') + head + std::string(pad, '=') + "\n";
  Line(out, "Successful requests:", std::to_string(s.completed));
  Line(out, "Failed requests:", std::to_string(s.failed));
  Line(out, "Benchmark duration (s):", Num(s.duration_s));
  Line(out, "Total input tokens:", std::to_string(s.total_input_tokens));
  Line(out, "Total generated tokens:", std::to_string(s.total_output_tokens) + " (from " +
                                           s.token_source + ")");
  Line(out, "Request throughput (req/s):", Num(s.request_throughput));
  Line(out, "Output token throughput (tok/s):", Num(s.output_throughput));
  Line(out, "Total token throughput (tok/s):", Num(s.total_token_throughput));
  Section(out, "Time to First Token", "TTFT (ms)", s.ttft_ms);
  Section(out, "Time per Output Token (excl. 1st token)", "TPOT (ms)", s.tpot_ms);
  Section(out, "Inter-token Latency", "ITL (ms)", s.itl_ms);
  Section(out, "End-to-end Latency", "E2EL (ms)", s.e2el_ms);
  Line(out, "Mean output length (tokens):", Num(s.output_len.mean, 1));
  for (const auto& [msg, n] : s.errors) {
    Line(out, ("Error x" + std::to_string(n) + ":").c_str(), msg.substr(0, 200));
  }
  out += std::string(50, '=') + "\n";
  return out;
}

}  // namespace sluice::bench

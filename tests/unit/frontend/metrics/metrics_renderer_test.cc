// The /metrics page rendered from a fake core: expected series with their values, and
// valid Prometheus text exposition (checked by our own reader, and by `promtool check
// metrics` when it is installed).

#include "frontend/metrics/metrics_renderer.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "frontend/metrics/metric_set.h"
#include "frontend/metrics/prometheus_text.h"
#include "support/grpc_fake_service.h"

namespace sluice::metrics {
namespace {

using testing::FakeInferenceService;

class FakeGpus : public GpuMemorySource {
 public:
  Result<std::vector<nvml::GpuInfo>> Gpus() const override {
    if (fail) return Internal("nvml went away");
    return gpus;
  }
  std::vector<nvml::GpuInfo> gpus;
  bool fail = false;
};

// A small reader of the text format: returns an error message, or "" when valid. Checks
// line syntax, that every sample belongs to a family declared once (HELP + TYPE) before
// it, no duplicate series, and histogram consistency (cumulative buckets, +Inf == count).
std::string CheckExposition(const std::string& text,
                            std::map<std::string, std::string>* types_out = nullptr) {
  static const std::regex kHelp(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex kType(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex kSample(
      R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})? ([-+]?(\d+(\.\d*)?([eE][-+]?\d+)?|Inf|NaN)))");
  std::map<std::string, std::string> types;
  std::set<std::string> helped, series;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  std::map<std::string, double> last_bucket;
  std::set<std::string> closed;  // families whose samples ended
  std::string current;
  if (!text.empty() && text.back() != '\n') return "text does not end with a newline";
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    const std::string where = "line " + std::to_string(n) + ": " + line;
    if (line.rfind("# HELP ", 0) == 0) {
      if (!std::regex_match(line, m, kHelp)) return "bad HELP, " + where;
      if (!helped.insert(m[1]).second) return "second HELP, " + where;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(line, m, kType)) return "bad TYPE, " + where;
      if (types.count(m[1])) return "second TYPE, " + where;
      types[m[1]] = m[2];
    } else if (line.rfind("#", 0) == 0) {
      continue;  // comment
    } else {
      if (!std::regex_match(line, m, kSample)) return "bad sample, " + where;
      std::string name = m[1];
      std::string family = name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
            types.count(name.substr(0, name.size() - s.size())) &&
            types[name.substr(0, name.size() - s.size())] == "histogram")
          family = name.substr(0, name.size() - s.size());
      }
      if (!types.count(family)) return "sample before its TYPE, " + where;
      if (family != current) {
        // A family's samples come together, right after its TYPE (Go's parser would take
        // a later run for a second family of the same name).
        if (!closed.insert(current).second && !current.empty()) return "family split, " + where;
        if (closed.count(family)) return "family split, " + where;
        current = family;
      }
      if (!series.insert(line.substr(0, line.rfind(' '))).second)
        return "duplicate series, " + where;
      const double value =
          std::stod(m[m.size() - 4].str() == "+Inf" ? "inf" : m[m.size() - 4].str());
      if (types[family] == "histogram") {
        // One histogram series: its labels without `le`.
        static const std::regex kLe(R"(,?le="[^"]*")");
        std::string key = family + std::regex_replace(m[2].str(), kLe, "");
        if (key.find("{,") != std::string::npos) key.erase(key.find("{,") + 1, 1);
        if (key.ends_with("{}")) key.resize(key.size() - 2);
        if (name == family + "_bucket") {
          if (value < last_bucket[key]) return "buckets not cumulative, " + where;
          last_bucket[key] = value;
        } else if (name == family + "_count" && value != last_bucket[key]) {
          return "_count differs from the +Inf bucket, " + where;
        }
      }
    }
  }
  if (types_out) *types_out = types;
  return "";
}

// Runs promtool on `text`; returns its lint lines, or fails the test on a parse error.
// nullopt when promtool is not installed.
std::optional<std::vector<std::string>> Promtool(const std::string& text) {
  if (std::system("command -v promtool > /dev/null 2>&1") != 0) return std::nullopt;
  char path[] = "/tmp/sluice_metrics_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return std::nullopt;
  close(fd);
  std::ofstream(path) << text;
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (p && fgets(buf, sizeof(buf), p)) out += buf;
  int rc = p ? pclose(p) : -1;
  std::remove(path);
  EXPECT_NE(WEXITSTATUS(rc), 1) << "promtool: " << out;
  EXPECT_EQ(out.find("error"), std::string::npos) << "promtool: " << out;
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) lines.push_back(l);
  return lines;
}

void FillFake(FakeInferenceService& fake) {
  core::ModelStatistics a;
  a.name = "identity";
  a.version = "1";
  a.inference_count = 42;
  a.execution_count = 40;
  a.success = {42, 84'000'000};  // 84 ms
  a.fail = {5, 1'000};
  a.cancel_count = 2;
  a.queue = {42, 4'200'000};
  a.compute_input = {40, 1'000'000};
  a.compute_infer = {40, 70'000'000};
  a.compute_output = {40, 3'000};
  a.pending_count = 3;
  ObserveMetric(a.first_response_ms, 42.0);
  ObserveMetric(a.first_response_ms, 1200.0);
  core::ModelStatistics b;
  b.name = "repeat";
  b.version = "2";
  b.success = {7, 7'000};
  fake.stats = {b, a};

  fake.lifecycle.versions = {{"identity", 1, core::ModelState::kReady, 1.25},
                             {"repeat", 1, core::ModelState::kUnavailable, 0.5},
                             {"repeat", 2, core::ModelState::kUnloading, 0.75}};
  fake.lifecycle.unload_duration_secs = {{0.1, 2}, {1, 1, 1}, 3.5, 3};
  fake.index = {{"identity", 1, core::ModelState::kReady, ""},
                {"never_loaded", std::nullopt, core::ModelState::kUnknown, ""}};
  fake.gpu_memory = {{"repeat", 2147483648u}};
  fake.backend_metrics = {
      {"vllm:num_requests_running", MetricType::kGauge, "Number of requests running",
       {{{{"model_name", "qwen"}}, 2, {}}}}};
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

TEST(MetricsRenderer, RendersTritonAndSluiceSeries) {
  FakeInferenceService fake;
  FillFake(fake);
  FakeGpus gpus;
  gpus.gpus = {{0, "GPU-aaaa", "H100", 80'000'000'000u, 1'000'000u},
               {1, "GPU-bbbb", "H100", 80'000'000'000u, 0}};
  const std::string text = MetricsRenderer(fake, &gpus).Render();

  for (const char* line : {
           "nv_inference_request_success{model=\"identity\",version=\"1\"} 42",
           "nv_inference_request_success{model=\"repeat\",version=\"2\"} 7",
           "nv_inference_request_failure{model=\"identity\",version=\"1\",reason=\"BACKEND\"} 3",
           "nv_inference_request_failure{model=\"identity\",version=\"1\",reason=\"CANCELED\"} 2",
           "nv_inference_count{model=\"identity\",version=\"1\"} 42",
           "nv_inference_exec_count{model=\"identity\",version=\"1\"} 40",
           "nv_inference_request_duration_us{model=\"identity\",version=\"1\"} 84000",
           "nv_inference_queue_duration_us{model=\"identity\",version=\"1\"} 4200",
           "nv_inference_compute_input_duration_us{model=\"identity\",version=\"1\"} 1000",
           "nv_inference_compute_infer_duration_us{model=\"identity\",version=\"1\"} 70000",
           "nv_inference_compute_output_duration_us{model=\"identity\",version=\"1\"} 3",
           "nv_inference_pending_request_count{model=\"identity\",version=\"1\"} 3",
           "nv_model_load_duration_secs{model=\"identity\",version=\"1\"} 1.25",
           "nv_model_load_duration_secs{model=\"repeat\",version=\"2\"} 0.75",
           "sluice_model_state{model=\"identity\",version=\"1\",state=\"READY\"} 1",
           "sluice_model_state{model=\"identity\",version=\"1\",state=\"LOADING\"} 0",
           "sluice_model_state{model=\"repeat\",version=\"2\",state=\"UNLOADING\"} 1",
           "sluice_model_state{model=\"repeat\",version=\"2\",state=\"READY\"} 0",
           "sluice_model_state{model=\"repeat\",version=\"1\",state=\"UNAVAILABLE\"} 1",
           "sluice_model_state{model=\"never_loaded\",version=\"\",state=\"UNKNOWN\"} 1",
           "sluice_model_unload_duration_seconds_bucket{le=\"0.1\"} 1",
           "sluice_model_unload_duration_seconds_bucket{le=\"2\"} 2",
           "sluice_model_unload_duration_seconds_bucket{le=\"+Inf\"} 3",
           "sluice_model_unload_duration_seconds_sum 3.5",
           "sluice_model_unload_duration_seconds_count 3",
           "nv_gpu_memory_total_bytes{gpu_uuid=\"GPU-aaaa\"} 80000000000",
           "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-aaaa\"} 1000000",
           "nv_gpu_memory_used_bytes{gpu_uuid=\"GPU-bbbb\"} 0",
           "sluice_model_gpu_memory_bytes{model=\"repeat\"} 2147483648",
           "vllm:num_requests_running{model_name=\"qwen\"} 2",
           "nv_inference_first_response_histogram_ms_bucket{model=\"identity\",version=\"1\",le=\"100\"} 1",
           "nv_inference_first_response_histogram_ms_bucket{model=\"identity\",version=\"1\",le=\"2000\"} 2",
           "nv_inference_first_response_histogram_ms_bucket{model=\"identity\",version=\"1\",le=\"+Inf\"} 2",
           "nv_inference_first_response_histogram_ms_count{model=\"identity\",version=\"1\"} 2",
           "nv_inference_first_response_histogram_ms_sum{model=\"identity\",version=\"1\"} 1242",
       })
    EXPECT_TRUE(Has(text, line)) << "missing: " << line << "\n" << text;

  // Every version has exactly one series per state, and exactly one of them is 1.
  for (const char* model : {"identity\",version=\"1", "repeat\",version=\"1",
                            "repeat\",version=\"2", "never_loaded\",version=\""}) {
    int series = 0, ones = 0;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
      if (l.rfind(std::string("sluice_model_state{model=\"") + model + "\"", 0) != 0) continue;
      ++series;
      ones += l.back() == '1';
    }
    EXPECT_EQ(series, 5) << model;
    EXPECT_EQ(ones, 1) << model;
  }

  std::map<std::string, std::string> types;
  EXPECT_EQ(CheckExposition(text, &types), "");
  EXPECT_EQ(types["nv_inference_request_success"], "counter");
  EXPECT_EQ(types["nv_inference_pending_request_count"], "gauge");
  EXPECT_EQ(types["sluice_model_unload_duration_seconds"], "histogram");
  EXPECT_EQ(types["vllm:num_requests_running"], "gauge");
  EXPECT_NE(text.find("# HELP nv_inference_count "), std::string::npos);

  if (auto lint = Promtool(text)) {
    // Only the naming lints that Triton's and vLLM's fixed metric names cause are allowed.
    for (const std::string& l : *lint) {
      const bool triton_name =
          l.rfind("nv_", 0) == 0 &&
          (l.find("should have \"_total\" suffix") != std::string::npos ||
           l.find("should not have \"_count\" suffix") != std::string::npos ||
           l.find("should not contain abbreviated units") != std::string::npos ||
           l.find("should not include type") != std::string::npos ||
           l.find("use base unit") != std::string::npos);
      const bool vllm_name =
          l.rfind("vllm:", 0) == 0 && l.find("should not contain ':'") != std::string::npos;
      EXPECT_TRUE(triton_name || vllm_name) << "promtool: " << l;
    }
  } else {
    GTEST_LOG_(INFO) << "promtool not installed; checked with the built-in reader only";
  }
}

TEST(MetricsRenderer, NoGpuSourceMeansNoGpuSeries) {
  FakeInferenceService fake;
  FillFake(fake);
  const std::string text = MetricsRenderer(fake, nullptr).Render();
  EXPECT_EQ(text.find("nv_gpu_memory"), std::string::npos);
  EXPECT_EQ(CheckExposition(text), "");
}

TEST(MetricsRenderer, FailingSourcesBecomeComments) {
  FakeInferenceService fake;  // no stats at all: Statistics("") returns an empty list
  FakeGpus gpus;
  gpus.fail = true;
  const std::string text = MetricsRenderer(fake, &gpus).Render();
  EXPECT_NE(text.find("# sluice: GPU metrics unavailable: nvml went away"), std::string::npos);
  EXPECT_EQ(CheckExposition(text), "");
  if (auto lint = Promtool(text)) {
    for (const std::string& l : *lint) EXPECT_EQ(l.rfind("nv_", 0), 0u) << "promtool: " << l;
  }
}

// Families as stubs send them: a gauge, a counter and a histogram for one LLM model.
std::vector<MetricFamily> LlmFamilies(const std::string& model, const std::string& engine,
                                      uint64_t ttft_in_first_bucket) {
  const MetricLabels labels = {{"model_name", model}, {"engine", engine}};
  MetricSample hist;
  hist.labels = labels;
  hist.histogram = NewMetricHistogram({0.1, 1});
  for (uint64_t i = 0; i < ttft_in_first_bucket; ++i) ObserveMetric(hist.histogram, 0.05);
  return {{"vllm:num_requests_running", MetricType::kGauge, "Running.", {{labels, 1, {}}}},
          {"vllm:prompt_tokens_total", MetricType::kCounter, "Prompt tokens.", {{labels, 10, {}}}},
          {"vllm:time_to_first_token_seconds", MetricType::kHistogram, "TTFT.", {hist}}};
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t pos = 0; (pos = text.find(what, pos)) != std::string::npos; pos += what.size()) ++n;
  return n;
}

// Issue 20: each stub rendered its own text and the server concatenated them, so with two
// LLM models every vllm:* family had two HELP/TYPE pairs (Go's parser rejects the page),
// and counters were TYPEd without the _total their samples carried.
TEST(MetricsRenderer, TwoModelsShareOneHelpAndTypePerFamily) {
  FakeInferenceService fake;
  for (const char* model : {"alpha", "beta"}) {
    auto more = LlmFamilies(model, "0", 1);
    fake.backend_metrics.insert(fake.backend_metrics.end(), more.begin(), more.end());
  }
  const std::string text = MetricsRenderer(fake, nullptr).Render();
  std::map<std::string, std::string> types;
  EXPECT_EQ(CheckExposition(text, &types), "") << text;
  for (const char* family : {"vllm:num_requests_running", "vllm:prompt_tokens_total",
                             "vllm:time_to_first_token_seconds"}) {
    EXPECT_EQ(Count(text, std::string("# TYPE ") + family + " "), 1u) << family;
    EXPECT_EQ(Count(text, std::string("# HELP ") + family + " "), 1u) << family;
  }
  EXPECT_EQ(types["vllm:prompt_tokens_total"], "counter");
  for (const char* line : {
           "vllm:num_requests_running{model_name=\"alpha\",engine=\"0\"} 1",
           "vllm:num_requests_running{model_name=\"beta\",engine=\"0\"} 1",
           "vllm:prompt_tokens_total{model_name=\"alpha\",engine=\"0\"} 10",
           "vllm:prompt_tokens_total{model_name=\"beta\",engine=\"0\"} 10",
           "vllm:time_to_first_token_seconds_count{model_name=\"beta\",engine=\"0\"} 1",
       })
    EXPECT_TRUE(Has(text, line)) << "missing: " << line << "\n" << text;
  // The old page, for the record: the checker refuses it.
  const std::string old_page =
      "# HELP vllm:prompt_tokens x\n# TYPE vllm:prompt_tokens counter\n"
      "vllm:prompt_tokens_total{model_name=\"alpha\"} 10\n";
  EXPECT_NE(CheckExposition(old_page), "");
  EXPECT_NE(CheckExposition("# TYPE g gauge\ng{m=\"a\"} 1\n# TYPE g gauge\ng{m=\"b\"} 1\n"), "");
}

TEST(MetricSet, MergesEqualSeriesAndKeepsFamiliesTogether) {
  MetricSet set;
  // Two versions of one model, each an instance 0: their series meet and add up.
  for (auto& f : LlmFamilies("m", "0", 1)) ASSERT_TRUE(set.Add(f).ok());
  ASSERT_TRUE(set.Add({"other", MetricType::kGauge, "o", {{{}, 1, {}}}}).ok());
  for (auto& f : LlmFamilies("m", "0", 2)) ASSERT_TRUE(set.Add(f).ok());
  for (auto& f : LlmFamilies("m", "1", 1)) ASSERT_TRUE(set.Add(f).ok());
  const std::string text = set.Render();
  EXPECT_EQ(CheckExposition(text), "") << text;
  EXPECT_TRUE(Has(text, "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 2")) << text;
  EXPECT_TRUE(Has(text, "vllm:num_requests_running{model_name=\"m\",engine=\"1\"} 1")) << text;
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",engine=\"0\",le=\"0.1\"} 3"))
      << text;
  EXPECT_TRUE(Has(text, "vllm:time_to_first_token_seconds_count{model_name=\"m\",engine=\"0\"} 3")) << text;
  // Labels in another order name the same series.
  ASSERT_TRUE(set.Add({"other", MetricType::kGauge, "o", {{{{"b", "2"}, {"a", "1"}}, 1, {}}}}).ok());
  ASSERT_TRUE(set.Add({"other", MetricType::kGauge, "o", {{{{"a", "1"}, {"b", "2"}}, 1, {}}}}).ok());
  EXPECT_TRUE(Has(set.Render(), "other{b=\"2\",a=\"1\"} 2"));
}

TEST(MetricSet, RefusesConflictsAndInvalidFamiliesAsComments) {
  MetricSet set;
  ASSERT_TRUE(set.Add({"x_total", MetricType::kCounter, "x", {{{}, 1, {}}}}).ok());
  Status type_clash = set.Add({"x_total", MetricType::kGauge, "x", {{{}, 1, {}}}});
  EXPECT_FALSE(type_clash.ok());
  EXPECT_NE(type_clash.message().find("'x_total' is a gauge here and a counter elsewhere"), std::string::npos)
      << type_clash.message();
  MetricSample h1, h2;
  h1.histogram = NewMetricHistogram({1});
  h2.histogram = NewMetricHistogram({2});
  ASSERT_TRUE(set.Add({"h", MetricType::kHistogram, "h", {h1}}).ok());
  EXPECT_FALSE(set.Add({"h", MetricType::kHistogram, "h", {h2}}).ok());
  EXPECT_FALSE(set.Add({"bad-name", MetricType::kGauge, "", {}}).ok());
  EXPECT_FALSE(set.Add({"g", MetricType::kGauge, "two\nlines", {}}).ok());
  EXPECT_FALSE(set.Add({"g", MetricType::kGauge, "", {{{{"__reserved", "v"}}, 1, {}}}}).ok());
  EXPECT_FALSE(set.Add({"h2", MetricType::kHistogram, "", {{{{"le", "1"}}, 0, h1.histogram}}}).ok());
  EXPECT_FALSE(set.Add({"c_total", MetricType::kCounter, "", {{{}, -1, {}}}}).ok());
  const std::string text = set.Render();
  EXPECT_EQ(CheckExposition(text), "") << text;
  EXPECT_EQ(Count(text, "# sluice: metrics left out: "), 7u) << text;
  EXPECT_TRUE(Has(text, "x_total 1")) << text;
  EXPECT_EQ(set.families().size(), 2u);
}

TEST(PrometheusText, IntegralValuesPrintAsIntegers) {
  EXPECT_EQ(PrometheusText::FormatDouble(80'000'000'000.0), "80000000000");
  EXPECT_EQ(PrometheusText::FormatDouble(3.0), "3");
  EXPECT_EQ(PrometheusText::FormatDouble(1.7e18), "1.7e+18");  // past exact integers
  EXPECT_EQ(PrometheusText::FormatDouble(0.25), "0.25");
}

TEST(PrometheusText, EscapesAndFormats) {
  EXPECT_EQ(PrometheusText::EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(PrometheusText::FormatDouble(0.5), "0.5");
  EXPECT_EQ(PrometheusText::FormatDouble(1e-9), "1e-09");
  EXPECT_EQ(PrometheusText::FormatDouble(1.0 / 0.0), "+Inf");
  PrometheusText out;
  out.Family("m", "gauge", "multi\nline \\ help");
  out.Sample("m", {{"l", "x\"y"}}, 1.5);
  EXPECT_EQ(out.text(), "# HELP m multi\\nline \\\\ help\n# TYPE m gauge\nm{l=\"x\\\"y\"} 1.5\n");
  EXPECT_EQ(CheckExposition(out.text()), "");
}

TEST(PrometheusText, MalformedHistogramStaysValid) {
  PrometheusText out;
  out.Family("h", "histogram", "h");
  out.HistogramSamples("h", {}, core::Histogram{{1.0}, {4}, 2.0, 4});  // one bucket short
  EXPECT_EQ(out.text(),
            "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 4\nh_sum 2\nh_count 4\n");
  EXPECT_EQ(CheckExposition(out.text()), "");
}

TEST(PrometheusText, CheckerCatchesBrokenText) {
  // The reader used above must be able to fail.
  EXPECT_NE(CheckExposition("m 1\n"), "");                         // no TYPE
  EXPECT_NE(CheckExposition("# TYPE m gauge\nm{l=\"x} 1\n"), "");  // bad label
  EXPECT_NE(CheckExposition("# TYPE m gauge\nm 1\nm 2\n"), "");    // duplicate
  EXPECT_NE(CheckExposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"),
            "");
  EXPECT_NE(CheckExposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n"), "");
}

}  // namespace
}  // namespace sluice::metrics

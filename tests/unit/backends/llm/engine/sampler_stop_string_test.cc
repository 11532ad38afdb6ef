// StopStringMatcher: across every way of splitting the text into deltas, the emitted text
// is always a prefix of the final text (a stop string is never half-emitted), the final
// text is cut at the earliest stop, and held-back text is released on Flush.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backends/llm/engine/stop_string_matcher.h"

namespace sluice::llm {
namespace {

struct Outcome {
  std::string text;
  bool stopped = false;
  std::string matched;
};

// Feeds `text` split at `cuts`, checking after each delta that the emitted text so far is
// a prefix of `expected_final`.
Outcome FeedSplit(const std::vector<std::string>& stops, bool include, const std::string& text,
            const std::vector<size_t>& cuts, const std::string& expected_final) {
  StopStringMatcher m(stops, include);
  Outcome out;
  size_t prev = 0;
  std::vector<size_t> all = cuts;
  all.push_back(text.size());
  for (size_t cut : all) {
    auto d = m.Feed(std::string_view(text).substr(prev, cut - prev));
    prev = cut;
    out.text += d.text;
    EXPECT_EQ(expected_final.compare(0, out.text.size(), out.text), 0)
        << "emitted '" << out.text << "' is not a prefix of '" << expected_final << "'";
    if (d.stopped) {
      out.stopped = true;
      out.matched = d.matched;
    }
  }
  out.text += m.Flush();
  return out;
}

TEST(StopStringTest, NeverHalfEmittedAcrossAnySplit) {
  const std::string text = "Hello wor, world! END here";
  const std::vector<std::string> stops = {"world", "END"};
  const std::string want = "Hello wor, ";
  // Every single cut and every pair of cuts.
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); ++b) {
      const Outcome o = FeedSplit(stops, false, text, {a, b}, want);
      EXPECT_TRUE(o.stopped);
      EXPECT_EQ(o.text, want) << a << "," << b;
      EXPECT_EQ(o.matched, "world");
    }
  }
}

TEST(StopStringTest, IncludeStopStringInOutput) {
  const std::string text = "abc STOP def";
  for (size_t a = 0; a <= text.size(); ++a) {
    const Outcome o = FeedSplit({"STOP"}, true, text, {a}, "abc STOP");
    EXPECT_EQ(o.text, "abc STOP");
    EXPECT_TRUE(o.stopped);
  }
}

TEST(StopStringTest, CharByCharRandomTexts) {
  std::mt19937 rng(11);
  const std::vector<std::string> stops = {"aab", "ba", "abba"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int len = 1 + rng() % 20;
    for (int i = 0; i < len; ++i) text += "ab"[rng() % 2];
    // Reference: earliest match over all stops.
    size_t best = std::string::npos;
    for (const auto& s : stops) best = std::min(best, text.find(s));
    const std::string want = best == std::string::npos ? text : text.substr(0, best);
    std::vector<size_t> cuts;
    for (size_t i = 1; i < text.size(); ++i) {
      if (rng() % 2) cuts.push_back(i);
    }
    const Outcome o = FeedSplit(stops, false, text, cuts, want);
    EXPECT_EQ(o.text, want) << text;
    EXPECT_EQ(o.stopped, best != std::string::npos) << text;
  }
}

TEST(StopStringTest, HoldsBackAPossiblePrefixThenReleasesIt) {
  StopStringMatcher m({"</end>"}, false);
  auto d = m.Feed("value </e");
  EXPECT_EQ(d.text, "value ");
  EXPECT_EQ(m.held_back_bytes(), 3u);
  d = m.Feed("x");  // not a stop after all
  EXPECT_EQ(d.text, "</ex");
  d = m.Feed("tail </");
  EXPECT_EQ(d.text, "tail ");
  EXPECT_EQ(m.Flush(), "</");
}

TEST(StopStringTest, NoStopBeforeAllowed) {
  StopStringMatcher m({"ab"}, false);
  auto d = m.Feed("xab", /*allow_stop=*/false);
  EXPECT_FALSE(d.stopped);
  EXPECT_EQ(d.text, "xab");
  d = m.Feed("cab", true);
  EXPECT_TRUE(d.stopped);
  EXPECT_EQ(d.text, "c");
  EXPECT_TRUE(m.Feed("more").text.empty());
}

TEST(StopStringTest, MultibyteStopStrings) {
  const std::string text = "数据：结束了吗";
  const Outcome o = FeedSplit({"结束"}, false, text, {4, 10, 13}, "数据：");
  EXPECT_EQ(o.text, "数据：");
  EXPECT_TRUE(o.stopped);
}

}  // namespace
}  // namespace sluice::llm

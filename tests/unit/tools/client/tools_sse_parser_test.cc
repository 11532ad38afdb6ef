#include "tools/client/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::client {
namespace {

std::vector<SseEvent> FeedAll(const std::vector<std::string>& pieces, size_t max = 1 << 20) {
  SseParser parser(max);
  std::vector<SseEvent> out;
  for (const auto& p : pieces) {
    Status st = parser.Feed(p, &out);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return out;
}

TEST(SseParserTest, ParsesDataEventsAndDoneMarker) {
  auto events = FeedAll({"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n"});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].data, "{\"a\":1}");
  EXPECT_EQ(events[1].data, "{\"a\":2}");
  EXPECT_EQ(events[2].data, "[DONE]");
}

TEST(SseParserTest, EverySplitPointGivesTheSameEvents) {
  const std::string stream =
      "data: first\r\n\r\n: a comment\r\nevent: delta\r\ndata: line1\r\ndata: line2\r\n\r\n"
      "id: 7\ndata:nospace\n\ndata: {\"error\": \"boom\"}\r\r";
  auto whole = FeedAll({stream});
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(whole[0].data, "first");
  EXPECT_EQ(whole[1].event, "delta");
  EXPECT_EQ(whole[1].data, "line1\nline2");
  EXPECT_EQ(whole[2].id, "7");
  EXPECT_EQ(whole[2].data, "nospace");
  EXPECT_EQ(whole[3].data, "{\"error\": \"boom\"}");
  for (size_t i = 0; i <= stream.size(); ++i) {
    for (size_t j = i; j <= stream.size(); j += 7) {
      auto split = FeedAll({stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)});
      ASSERT_EQ(split.size(), whole.size()) << "split at " << i << "," << j;
      for (size_t k = 0; k < whole.size(); ++k) {
        EXPECT_EQ(split[k].data, whole[k].data) << "split at " << i << "," << j;
        EXPECT_EQ(split[k].event, whole[k].event);
      }
    }
  }
}

TEST(SseParserTest, ByteAtATime) {
  const std::string stream = "data: a\r\n\r\ndata: b\n\n";
  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  auto events = FeedAll(bytes);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "a");
  EXPECT_EQ(events[1].data, "b");
}

TEST(SseParserTest, EventWithoutDataIsNotDispatched) {
  auto events = FeedAll({"event: ping\n\n: keepalive\n\ndata: x\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "x");
  EXPECT_EQ(events[0].event, "");
}

TEST(SseParserTest, EmptyDataFieldIsAnEvent) {
  auto events = FeedAll({"data\n\ndata:\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].data, "");
}

TEST(SseParserTest, PartialEventIsReported) {
  SseParser parser;
  std::vector<SseEvent> out;
  ASSERT_TRUE(parser.Feed("data: x\n\ndata: y", &out).ok());
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(parser.HasPartialEvent());
  ASSERT_TRUE(parser.Feed("\n", &out).ok());
  EXPECT_TRUE(parser.HasPartialEvent());
  ASSERT_TRUE(parser.Feed("\n", &out).ok());
  EXPECT_FALSE(parser.HasPartialEvent());
  EXPECT_EQ(out.size(), 2u);
}

TEST(SseParserTest, OversizedEventIsAnError) {
  SseParser parser(64);
  std::vector<SseEvent> out;
  Status st = parser.Feed("data: " + std::string(40, 'a') + "\n", &out);
  ASSERT_TRUE(st.ok());
  st = parser.Feed("data: " + std::string(40, 'b') + "\n", &out);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  // A long line without a terminator also trips the limit.
  SseParser parser2(64);
  EXPECT_FALSE(parser2.Feed(std::string(100, 'x'), &out).ok());
}

}  // namespace
}  // namespace sluice::client

#include "common/tensor.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(TensorTest, ElementCountRefusesNegativeAndOverflowingShapes) {
  EXPECT_EQ(*ElementCount({2, 3, 4}), 24);
  EXPECT_EQ(*ElementCount({}), 1);
  EXPECT_EQ(*ElementCount({5, 0}), 0);
  EXPECT_FALSE(ElementCount({2, -1}).ok());
  EXPECT_FALSE(ElementCount({INT64_MAX, 2}).ok());
  EXPECT_FALSE(ElementCount({1 << 20, 1 << 20}, 1 << 30).ok());
}

TEST(TensorTest, BytesElementsRoundTripAndRejectLyingLengths) {
  std::string data;
  AppendBytesElement(data, "hello");
  AppendBytesElement(data, "");
  AppendBytesElement(data, "世界");
  auto elems = SplitBytesElements(data);
  ASSERT_TRUE(elems.ok());
  ASSERT_EQ(elems->size(), 3u);
  EXPECT_EQ((*elems)[0], "hello");
  EXPECT_EQ((*elems)[1], "");
  EXPECT_EQ((*elems)[2], "世界");

  std::string lying("\xff\x00\x00\x00" "abc", 7);
  auto bad = SplitBytesElements(lying);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("past the end"), std::string::npos);
  EXPECT_FALSE(SplitBytesElements(std::string("\x01\x00", 2)).ok());
}

TEST(TensorTest, ValidateTensorDataChecksByteSizes) {
  Tensor t{"x", DataType::kInt32, {2, 2}, std::string(16, '\0')};
  EXPECT_TRUE(ValidateTensorData(t).ok());
  t.data.resize(12);
  Status s = ValidateTensorData(t);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("'x'"), std::string::npos);
  Tensor b{"s", DataType::kBytes, {2}, {}};
  AppendBytesElement(b.data, "a");
  EXPECT_FALSE(ValidateTensorData(b).ok());
  AppendBytesElement(b.data, "b");
  EXPECT_TRUE(ValidateTensorData(b).ok());
}

}  // namespace
}  // namespace sluice

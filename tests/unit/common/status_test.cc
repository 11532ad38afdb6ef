#include "common/status.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(StatusTest, OkAndErrorsCarryCodeAndMessage) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("model 'x'");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: model 'x'");
  EXPECT_EQ(s.WithPrefix("load").message(), "load: model 'x'");
}

TEST(StatusTest, AParamNamesTheFieldAndSurvivesAPrefix) {
  EXPECT_EQ(NotFound("x").param(), "");
  Status s = InvalidArgument("bad id").WithParam("messages.[2].tool_call_id");
  EXPECT_EQ(s.param(), "messages.[2].tool_call_id");
  EXPECT_EQ(s.WithPrefix("chat").param(), "messages.[2].tool_call_id");
  EXPECT_EQ(s.WithPrefix("chat").message(), "chat: bad id");
  EXPECT_EQ(Status::Ok().WithParam("x").param(), "");  // OK names nothing
}

TEST(StatusTest, AssignOrReturnPropagatesTheFirstError) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "odd: 3");
}

}  // namespace
}  // namespace sluice

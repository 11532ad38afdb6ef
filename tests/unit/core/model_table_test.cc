// Triton's model table after the initial loads (core/model_table.h).

#include "core/model_table.h"

#include <gtest/gtest.h>

namespace sluice::core {
namespace {

TEST(ModelTableTest, RowsAlignUnderTritonsHeader) {
  std::vector<ModelIndexEntry> index = {
      {"sluice-demo", 1, ModelState::kReady, ""},
      {"broken", 2, ModelState::kUnavailable, "load failed for model 'broken': no\nconfig"},
      {"never", std::nullopt, ModelState::kUnknown, ""},
  };
  const std::string want =
      "+-------------+---------+--------------------------------------------------------+\n"
      "| Model       | Version | Status                                                 |\n"
      "+-------------+---------+--------------------------------------------------------+\n"
      "| sluice-demo | 1       | READY                                                  |\n"
      "| broken      | 2       | UNAVAILABLE: load failed for model 'broken': no config |\n"
      "| never       | -       | UNKNOWN                                                |\n"
      "+-------------+---------+--------------------------------------------------------+";
  EXPECT_EQ(FormatModelTable(index), want);
}

TEST(ModelTableTest, AnEmptyRepositoryStillHasItsHeader) {
  EXPECT_EQ(FormatModelTable({}),
            "+-------+---------+--------+\n"
            "| Model | Version | Status |\n"
            "+-------+---------+--------+\n"
            "+-------+---------+--------+");
}

}  // namespace
}  // namespace sluice::core

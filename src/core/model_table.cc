#include "core/model_table.h"

#include <algorithm>
#include <array>

namespace sluice::core {

std::string FormatModelTable(const std::vector<ModelIndexEntry>& index) {
  constexpr size_t kMaxCell = 200;
  using Row = std::array<std::string, 3>;
  std::vector<Row> rows = {{"Model", "Version", "Status"}};
  for (const ModelIndexEntry& e : index) {
    std::string status(ModelStateName(e.state));
    if (!e.reason.empty()) status += ": " + e.reason;
    for (char& c : status)
      if (c == '\n' || c == '\r') c = ' ';
    rows.push_back({e.name.substr(0, kMaxCell), e.version ? std::to_string(*e.version) : "-",
                    status.substr(0, kMaxCell)});
  }
  std::array<size_t, 3> width{};
  for (const Row& row : rows)
    for (size_t i = 0; i < 3; ++i) width[i] = std::max(width[i], row[i].size());
  std::string rule = "+";
  for (size_t w : width) rule += std::string(w + 2, '-') + "+";
  std::string out = rule;
  for (size_t r = 0; r < rows.size(); ++r) {
    out += "\n|";
    for (size_t i = 0; i < 3; ++i) out += " " + rows[r][i] + std::string(width[i] - rows[r][i].size(), ' ') + " |";
    if (r == 0) out += "\n" + rule;
  }
  out += "\n" + rule;
  return out;
}

}  // namespace sluice::core

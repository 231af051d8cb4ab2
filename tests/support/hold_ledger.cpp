#include "lockable/test/hold_ledger.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

namespace lockable::test {

HoldLedger read_hold_ledger(const std::filesystem::path& dir, const std::string& id) {
  HoldLedger ledger;
  std::ifstream in(dir / (id + ".ledger"));
  std::string kind, pid;
  long long stamp = 0;
  while (in >> kind >> pid >> stamp) {
    if (kind == "enter") {
      EXPECT_EQ(ledger.open.count(pid), 0u) << id << ": pid " << pid << " entered twice";
      ledger.open[pid] = stamp;
    } else {
      EXPECT_EQ(ledger.open.count(pid), 1u) << id << ": pid " << pid << " left without entering";
      ledger.holds.push_back({ledger.open[pid], stamp, pid});
      ledger.open.erase(pid);
    }
  }
  return ledger;
}

void expect_no_overlapping_holds(std::vector<Hold> holds, const std::string& id) {
  std::sort(holds.begin(), holds.end(),
            [](const Hold& a, const Hold& b) { return a.start < b.start; });
  for (std::size_t i = 1; i < holds.size(); ++i) {
    EXPECT_GE(holds[i].start, holds[i - 1].end)
        << id << ": pid " << holds[i].pid << " entered while pid " << holds[i - 1].pid
        << " held it";
  }
}

}  // namespace lockable::test

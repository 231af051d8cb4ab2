// Error messages stay readable for large labs: at most 20 resources listed, the rest summed up,
// while the accessors keep every line.
#include <lockable/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace lockable {
namespace {

std::size_t count_lines(const std::string& text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
}

TEST(NoMatchErrorTest, ListsEveryReasonOfASmallLab) {
  const NoMatchError error("no resource matches os=Android",
                           {"dut-1: offline", R"(dut-2: os is "iOS", required "Android")"});
  EXPECT_STREQ(error.what(),
               "no resource matches os=Android\n  dut-1: offline\n"
               "  dut-2: os is \"iOS\", required \"Android\"");
}

TEST(NoMatchErrorTest, ListsTwentyAndSumsUpTheRestByReason) {
  std::vector<std::string> reasons;
  for (int i = 0; i < 1000; ++i) {
    reasons.push_back("dut-" + std::to_string(i) + ": " +
                      (i % 10 == 0 ? R"(hostname is "rig-02", required "rig-01")" : "offline"));
  }
  const NoMatchError error("no resource matches os=Android", reasons);
  const std::string what = error.what();
  EXPECT_EQ(count_lines(what), 1u + 20u + 1u) << what;
  EXPECT_NE(what.find("\n  dut-19: offline\n"), std::string::npos) << what;
  EXPECT_EQ(what.find("dut-20:"), std::string::npos) << what;
  // 980 more: dut-20..dut-999, of which every tenth (98) is on the other host.
  EXPECT_NE(
      what.find(R"(... and 980 more: 882 offline; 98 hostname is "rig-02", required "rig-01")"),
      std::string::npos)
      << what;
  EXPECT_EQ(error.reasons().size(), 1000u);
}

TEST(TimeoutErrorTest, ListsTwentyBusyDevicesAndCountsTheRest) {
  std::vector<std::string> busy;
  for (int i = 0; i < 25; ++i) busy.push_back("dut-" + std::to_string(i) + ": held by pid 7");
  const TimeoutError error("timed out", busy);
  const std::string what = error.what();
  EXPECT_EQ(count_lines(what), 22u) << what;
  EXPECT_NE(what.find("\n  ... and 5 more"), std::string::npos) << what;
  EXPECT_EQ(error.busy().size(), 25u);
}

}  // namespace
}  // namespace lockable

// The allocation log and `lockable report`, run as real processes: many `lockable` commands and
// sample suites at once on few devices, their logs and reports fed to `lockable report`.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
using lockable::test::read_text;
using lockable::test::RunResult;
using lockable::test::TempDir;
using lockable::test::write_file;

constexpr auto kGuard = std::chrono::seconds(240);

lockable::test::ChildOptions child_options() {
  lockable::test::ChildOptions options;
  options.in = lockable::test::Stream::null();
  options.err = lockable::test::Stream::pipe();
  // The rig's own settings must not reach the programs under test.
  options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
  return options;
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::istringstream text(read_text(file));
  std::vector<std::string> lines;
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  return lines;
}

const char* kTwoDevices = R"([
  {"id": "dut-a", "online": true, "hostname": "localhost", "type": "phone"},
  {"id": "dut-b", "online": true, "hostname": "localhost", "type": "phone"}])";

class MetricsCliTest : public ::testing::Test {
 protected:
  void SetUp() override { write_file(resources_, kTwoDevices); }

  std::vector<std::string> lockable_words(const std::vector<std::string>& extra) const {
    std::vector<std::string> words{
        LOCKABLE_CLI_PATH, "--resources", resources_.string(), "--lock-folder", locks_.string(),
        "--hostname",      "localhost",   "--metrics-file",    log_.string(),   "--quiet"};
    words.insert(words.end(), extra.begin(), extra.end());
    return words;
  }

  TempDir dir_;
  fs::path resources_ = dir_.path() / "resources.json";
  fs::path locks_ = dir_.path() / "locks";
  fs::path log_ = dir_.path() / "allocations.jsonl";
};

std::string shell_quote(const std::string& word) {
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

// 8 shells each run `lockable` 15 times on 2 devices, every line longer than PIPE_BUF (a
// 6,000-byte requirement): every line must come back whole, once, and no two holds of one
// device may overlap.
TEST_F(MetricsCliTest, ConcurrentAppendsFromManyProcessesNeverInterleaveOrLoseLines) {
  const std::string pad(6000, 'p');
  const std::string requirements = R"({"pad": {"$ne": ")" + pad + R"("}})";
  std::string command;
  for (const auto& word : lockable_words({"--requirements", requirements, "true"})) {
    command += shell_quote(word) + " ";
  }
  constexpr int kShells = 8;
  constexpr int kRuns = 15;
  std::vector<std::unique_ptr<lockable::test::Child>> shells;
  for (int i = 0; i < kShells; ++i) {
    shells.push_back(std::make_unique<lockable::test::Child>(
        std::vector<std::string>{"/bin/sh", "-c",
                                 "i=0; while [ $i -lt " + std::to_string(kRuns) + " ]; do " +
                                     command + " || exit 1; i=$((i+1)); done"},
        child_options()));
  }
  for (auto& shell : shells) ASSERT_EQ(shell->wait(kGuard), 0) << shell->output();

  const auto lines = lines_of(log_);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kShells * kRuns));
  std::set<std::string> alloc_ids;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> holds;
  for (const auto& text : lines) {
    ASSERT_GT(text.size(), 4096u) << "the test needs lines longer than PIPE_BUF";
    const Json line = Json::parse(text);  // throws on a torn line
    EXPECT_EQ(line["outcome"], "released");
    EXPECT_EQ(line["requirements"]["pad"]["$ne"], pad);
    EXPECT_EQ(line["label"], "true");
    alloc_ids.insert(line["alloc_id"].get<std::string>());
    holds[line["resource_id"].get<std::string>()].emplace_back(line["start"], line["release"]);
  }
  EXPECT_EQ(alloc_ids.size(), lines.size()) << "every allocation once";
  for (auto& [id, intervals] : holds) {
    std::sort(intervals.begin(), intervals.end());
    for (std::size_t i = 1; i < intervals.size(); ++i) {
      // ISO 8601 UTC with a fixed width sorts as text.
      EXPECT_LE(intervals[i - 1].second, intervals[i].first) << id << " held twice at once";
    }
  }
}

TEST_F(MetricsCliTest, UnwritableMetricsFileIsAWarningAndTheCommandStillRuns) {
  auto words = lockable_words({"echo", "ran on $ID"});
  words.erase(std::find(words.begin(), words.end(), "--quiet"));
  const auto at = std::find(words.begin(), words.end(), log_.string());
  *at = dir_.path().string();  // a directory
  const RunResult result = lockable::test::run(words, child_options(), kGuard);
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("ran on dut-"), std::string::npos) << result;
  EXPECT_NE(result.err.find("warning: metrics file " + dir_.path().string()), std::string::npos)
      << result;
}

TEST_F(MetricsCliTest, MetricsFileComesFromTheVariableToo) {
  auto words = lockable_words({"true"});
  words.erase(std::find(words.begin(), words.end(), "--metrics-file"),
              std::find(words.begin(), words.end(), "--quiet"));
  auto options = child_options();
  options.env["LOCKABLE_METRICS_FILE"] = log_.string();
  const RunResult result = lockable::test::run(words, options, kGuard);
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_EQ(lines_of(log_).size(), 1u);
}

}  // namespace

// The allocation log and `lockable report`, run as real processes: many `lockable` commands and
// sample suites at once on few devices, their logs and reports fed to `lockable report`.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/child.hpp"
#include "lockable/test/files.hpp"
#include "report_reader.hpp"

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

// Few devices for the sample suite (one phone, one board, one power switch) and a spare that a
// test holds to make a request time out.
const char* kSampleRig = R"([
  {"id": "pixel-7-01", "online": true, "hostname": "localhost", "type": "phone", "os": "Android",
   "version": "14", "serial": "28131FDH2000AB", "model": "Pixel 7", "usb": {"hub": 1, "port": 2}},
  {"id": "nrf52-dk-02", "online": true, "hostname": "localhost", "type": "board", "vendor": "Nordic",
   "board": {"name": "nRF52840-DK", "rev": 3}, "serial_port": "/dev/ttyACM1", "tags": ["ble"]},
  {"id": "power-switch-01", "online": true, "hostname": "localhost", "type": "power_switch",
   "vendor": "Energenie", "outlets": 4, "address": "usb:1-1.4"},
  {"id": "spare-01", "online": true, "hostname": "localhost", "type": "spare"}])";

struct Expected {
  std::size_t allocations = 0;
  double total_hold = 0;
  std::vector<double> queue;
  std::size_t timeouts = 0;
};

// The same definitions as the report's, computed here from the inputs.
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double p95(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(v.size())));
  return v[std::max<std::size_t>(rank, 1) - 1];
}
double ms(const std::string& seconds) {
  return static_cast<double>(lockable::e2e::parse_seconds_ms(seconds)) / 1000.0;
}
double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }

const Json& device_entry(const Json& report, const std::string& id) {
  for (const auto& device : report["devices"]) {
    if (device["resource_id"] == id) return device;
  }
  throw std::runtime_error("no device " + id + " in the report: " + report.dump());
}

// Four sample suites (two writing XML, two JSON) and four `lockable` commands at once on one
// phone, one board and one power switch, plus a request that times out; then `lockable report`
// over every report and the log. Every figure is checked against the inputs.
TEST_F(MetricsCliTest, ReportOfConcurrentSuitesAndCommandsMatchesTheirReportsAndLog) {
  write_file(resources_, kSampleRig);
  // A spare held for the whole run, so that one request times out.
  const fs::path started = dir_.path() / "spare-held";
  const fs::path done = dir_.path() / "spare-done";
  // Held until the test says so, not for a fixed time: a loaded machine may take seconds to
  // start the runs below, and the timeout must still find the spare held.
  lockable::test::Child holder(
      // One word: lockable runs it with /bin/sh -c, as the Python CLI does.
      lockable_words({"--requirements", "type=spare",
                      "touch " + started.string() + "; while [ ! -e " + done.string() +
                          " ]; do sleep 0.05; done"}),
      child_options());
  for (int i = 0; i < 600 && !fs::exists(started); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(fs::exists(started)) << holder.output();

  std::vector<fs::path> reports;
  std::vector<std::unique_ptr<lockable::test::Child>> runs;
  for (int i = 0; i < 4; ++i) {
    reports.push_back(dir_.path() / ("report" + std::to_string(i) + (i % 2 ? ".json" : ".xml")));
    runs.push_back(std::make_unique<lockable::test::Child>(
        std::vector<std::string>{
            SAMPLE_SUITE_PATH, "--lockable_resources=" + resources_.string(),
            "--lockable_lock_folder=" + locks_.string(), "--lockable_hostname=localhost",
            "--lockable_metrics_file=" + log_.string(),
            std::string("--gtest_output=") + (i % 2 ? "json:" : "xml:") + reports.back().string()},
        child_options()));
    runs.push_back(std::make_unique<lockable::test::Child>(
        lockable_words({"--requirements", "os=Android", "sleep", "0.1"}), child_options()));
  }
  const auto timed_out = lockable::test::run(
      lockable_words({"--timeout", "0.2", "--requirements", "type=spare", "true"}), child_options(),
      kGuard);
  EXPECT_EQ(timed_out.exit_code, 6) << timed_out;
  write_file(done, "");
  for (auto& run : runs) ASSERT_EQ(run->wait(kGuard), 0) << run->output();
  ASSERT_EQ(holder.wait(kGuard), 0) << holder.output();

  // What the log recorded.
  std::map<std::string, Expected> expected;
  std::vector<double> all_queue;
  double first = 1e300, last = 0;
  std::size_t granted_lines = 0;
  std::set<std::string> logged_allocs;
  for (const auto& text : lines_of(log_)) {
    const Json line = Json::parse(text);
    const auto parse_time = [&](const char* key) {
      return static_cast<double>(lockable::e2e::parse_time_ms(line[key])) / 1000.0 +
             std::stod(line[key].get<std::string>().substr(23, 3)) / 1e6;
    };
    if (line["outcome"] == "timed_out") {
      for (const auto& id : line["candidates"]) ++expected[id.get<std::string>()].timeouts;
      first = std::min(first, parse_time("end"));
      last = std::max(last, parse_time("end"));
      continue;
    }
    ASSERT_EQ(line["outcome"], "released") << text;
    ++granted_lines;
    logged_allocs.insert(line["alloc_id"].get<std::string>());
    auto& device = expected[line["resource_id"].get<std::string>()];
    ++device.allocations;
    device.total_hold += line["duration"].get<double>();
    device.queue.push_back(line["queue_time"].get<double>());
    all_queue.push_back(line["queue_time"].get<double>());
    first = std::min(first, parse_time("start"));
    last = std::max(last, parse_time("release"));
  }
  // 4 suites x (phone, board, phone + switch) + 4 commands + the spare's holder.
  ASSERT_EQ(granted_lines, 4u * 4u + 4u + 1u);
  ASSERT_EQ(expected["spare-01"].timeouts, 1u);

  // Every allocation the reports name is one the log has (counted once below).
  std::map<std::string, std::set<std::string>> suite_devices;
  std::map<std::string, double> report_hold;
  std::map<std::string, std::size_t> report_allocations;
  double report_queue_max = 0;
  for (const auto& path : reports) {
    const auto report = path.extension() == ".xml" ? lockable::e2e::read_xml_report(path)
                                                   : lockable::e2e::read_json_report(path);
    for (const auto& suite : report.suites) {
      for (const char* suffix : {"", "_1", "_2"}) {
        const std::string id = suite.get(std::string("lockable_resource_id") + suffix);
        if (id.empty()) continue;
        EXPECT_EQ(logged_allocs.count(suite.get(std::string("lockable_alloc_id") + suffix)), 1u);
        suite_devices[suite.name].insert(id);
        ++report_allocations[id];
        report_hold[id] += ms(suite.get(std::string("lockable_allocation_duration") + suffix));
        report_queue_max =
            std::max(report_queue_max,
                     ms(suite.get(std::string("lockable_allocation_queue_time") + suffix)));
      }
    }
  }
  ASSERT_EQ(suite_devices.size(), 3u);

  std::vector<std::string> words{LOCKABLE_CLI_PATH, "report", "--format", "json"};
  for (const auto& path : reports) words.push_back(path.string());
  words.push_back(log_.string());
  const RunResult result = lockable::test::run(words, child_options(), kGuard);
  ASSERT_EQ(result.exit_code, 0) << result;
  const Json report = Json::parse(result.out);

  const double window = last - first;
  EXPECT_NEAR(report["window"]["seconds"].get<double>(), window, 1e-5);
  ASSERT_EQ(report["devices"].size(), expected.size()) << report.dump(2);
  for (const auto& [id, want] : expected) {
    const Json& got = device_entry(report, id);
    EXPECT_EQ(got["allocations"], want.allocations) << id;
    EXPECT_EQ(got["timeouts"], want.timeouts) << id;
    EXPECT_EQ(got["losses"], 0) << id;
    if (want.allocations == 0) continue;
    EXPECT_NEAR(got["total_hold"].get<double>(), want.total_hold,
                1e-5 * static_cast<double>(want.allocations))
        << id;
    EXPECT_NEAR(got["mean_hold"].get<double>(),
                want.total_hold / static_cast<double>(want.allocations), 1e-5)
        << id;
    EXPECT_NEAR(got["utilization"].get<double>(), want.total_hold / window, 1e-3) << id;
    EXPECT_NEAR(got["queue_time"]["median"].get<double>(), median(want.queue), 1e-9) << id;
    EXPECT_NEAR(got["queue_time"]["p95"].get<double>(), p95(want.queue), 1e-9) << id;
    EXPECT_NEAR(got["queue_time"]["max"].get<double>(), max_of(want.queue), 1e-9) << id;
  }
  EXPECT_NEAR(report["queue_time"]["max"].get<double>(), max_of(all_queue), 1e-9);
  // Suites are named by the reports, commands by their words.
  for (const auto& [suite, devices] : suite_devices) {
    bool found = false;
    for (const auto& entry : report["suites"]) {
      if (entry["name"] != suite) continue;
      found = true;
      EXPECT_EQ(entry["devices"].get<std::vector<std::string>>(),
                std::vector<std::string>(devices.begin(), devices.end()));
      EXPECT_EQ(entry["allocations"], suite == "PhoneWithPowerSwitchTest" ? 8 : 4) << suite;
    }
    EXPECT_TRUE(found) << suite << " missing from " << report["suites"].dump();
  }
  bool commands = false;
  for (const auto& entry : report["suites"]) {
    if (entry["name"] == "sleep 0.1") {
      commands = true;
      EXPECT_EQ(entry["allocations"], 4);
    }
  }
  EXPECT_TRUE(commands) << report["suites"].dump();

  // From the reports alone (millisecond figures): the suites' allocations and holds.
  std::vector<std::string> only_reports{LOCKABLE_CLI_PATH, "report", "--format", "json"};
  for (const auto& path : reports) only_reports.push_back(path.string());
  const RunResult from_reports = lockable::test::run(only_reports, child_options(), kGuard);
  ASSERT_EQ(from_reports.exit_code, 0) << from_reports;
  const Json by_reports = Json::parse(from_reports.out);
  ASSERT_EQ(by_reports["devices"].size(), report_allocations.size());
  for (const auto& [id, count] : report_allocations) {
    const Json& got = device_entry(by_reports, id);
    EXPECT_EQ(got["allocations"], count) << id;
    EXPECT_NEAR(got["total_hold"].get<double>(), report_hold[id], 1e-9) << id;
  }
  EXPECT_NEAR(by_reports["queue_time"]["max"].get<double>(), report_queue_max, 1e-9);
}

TEST_F(MetricsCliTest, BadInputsAreNamedWithFileAndLineAndTheRestIsCounted) {
  // One good allocation, then a corrupt line and an incomplete last line.
  ASSERT_EQ(lockable::test::run(lockable_words({"true"}), child_options(), kGuard).exit_code, 0);
  const std::string good = read_text(log_);
  write_file(log_, good + "{\"outcome\": \"rel\n" + good.substr(0, good.size() / 2));
  const fs::path foreign = dir_.path() / "pom.xml";
  write_file(foreign, "<project>\n</project>\n");
  const fs::path plain = dir_.path() / "plain.xml";
  write_file(plain, "<testsuites name=\"AllTests\">\n  <testsuite name=\"S\"/>\n</testsuites>\n");
  const fs::path missing = dir_.path() / "missing.xml";
  const RunResult result =
      lockable::test::run({LOCKABLE_CLI_PATH, "report", "--format", "json", log_.string(),
                           foreign.string(), plain.string(), missing.string()},
                          child_options(), kGuard);
  EXPECT_EQ(result.exit_code, 1) << result;
  for (const std::string& text :
       {log_.string() + ":2: not a JSON object", log_.string() + ":3: the last line is incomplete",
        foreign.string() + ":1: not a GoogleTest report",
        plain.string() + ":1: a GoogleTest report without any lockable_* property",
        missing.string() + ": cannot read it: No such file or directory"}) {
    EXPECT_NE(result.err.find("lockable: report: " + text), std::string::npos) << text << "\n"
                                                                               << result;
  }
  const Json report = Json::parse(result.out);
  ASSERT_EQ(report["devices"].size(), 1u);
  EXPECT_EQ(report["devices"][0]["allocations"], 1);
  EXPECT_EQ(report["problems"].size(), 5u);
}

TEST_F(MetricsCliTest, ReportUsageErrorsNameTheOption) {
  for (const auto& [args, words] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"report"}, "FILES is required"},
           {{"report", "--format", "yaml", "x"}, "yaml"},
           {{"report", "--since", "yesterday", log_.string()}, "--since must be an ISO 8601"}}) {
    std::vector<std::string> argv{LOCKABLE_CLI_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    const RunResult result = lockable::test::run(argv, child_options(), kGuard);
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_NE(result.err.find(words), std::string::npos) << result;
  }
}

// A log of `devices` devices, three holds each (the second after a wait, the third lost) and
// one timed-out request per device.
std::string synthetic_log(int devices) {
  std::string text;
  const auto time = [](int seconds) {
    char out[40];
    std::snprintf(out, sizeof out, "2026-12-01T10:%02d:%02d.000000Z", seconds / 60, seconds % 60);
    return std::string(out);
  };
  for (int d = 0; d < devices; ++d) {
    const std::string id = "board-" + std::to_string(d);
    for (int k = 0; k < 3; ++k) {
      const int start = 10 * k + d % 7;
      Json line{{"outcome", k == 2 ? "lost" : "released"},
                {"resource_id", id},
                {"alloc_id", id + "-" + std::to_string(k)},
                {"request_id", "r"},
                {"requirements", {{"type", "board"}}},
                {"host", "h"},
                {"pid", 1},
                {"backend", "lock folder /x"},
                {"label", k == 1 ? "FlashTest" : "make check"},
                {"queued", k == 1},
                {"queue_time", k == 1 ? 4 : 0},
                {"start", time(start)},
                {"release", time(start + 6)},
                {"duration", 6}};
      if (k == 2) line["reason"] = "lease expired";
      text += line.dump() + "\n";
    }
    text +=
        Json{{"outcome", "timed_out"}, {"candidates", {id}}, {"requirements", {{"type", "board"}}},
             {"label", "nightly"},     {"queued", true},     {"queue_time", 3},
             {"end", time(40)}}
            .dump() +
        "\n";
  }
  return text;
}

std::size_t count_of(const std::string& text, const std::string& part) {
  std::size_t count = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// Opens the page in headless Chromium (Debian's `chromium`): the parsed DOM has one row per
// device and a screenshot is taken, for 2 and for 200 devices. Skips only where Chromium cannot
// start.
TEST_F(MetricsCliTest, HtmlReportIsSelfContainedAndRendersOneRowPerDeviceInChromium) {
  const fs::path chromium = "/usr/bin/chromium";
  for (const int devices : {2, 200}) {
    SCOPED_TRACE(std::to_string(devices) + " devices");
    write_file(log_, synthetic_log(devices));
    const fs::path html = dir_.path() / ("report" + std::to_string(devices) + ".html");
    const RunResult result =
        lockable::test::run({LOCKABLE_CLI_PATH, "report", "--html", html.string(), log_.string()},
                            child_options(), kGuard);
    ASSERT_EQ(result.exit_code, 0) << result;
    const std::string page = read_text(html);
    EXPECT_EQ(count_of(page, "class=\"device-row\""), static_cast<std::size_t>(devices));
    EXPECT_EQ(count_of(page, "class=\"hold\""), static_cast<std::size_t>(3 * devices));
    EXPECT_EQ(count_of(page, "class=\"wait\""), static_cast<std::size_t>(devices));
    EXPECT_EQ(count_of(page, "class=\"lost\""), static_cast<std::size_t>(devices));
    EXPECT_EQ(count_of(page, "class=\"timeout\""), static_cast<std::size_t>(devices));
    for (const char* fetches : {"http:", "https:", "<script", "src=", "url(", "@import", "<link"}) {
      EXPECT_EQ(page.find(fetches), std::string::npos)
          << fetches << ": the page must fetch nothing";
    }

    if (!fs::exists(chromium))
      GTEST_SKIP() << chromium << " is not installed (apt-get install chromium)";
    const fs::path profile = dir_.path() / ("chromium-profile" + std::to_string(devices));
    auto options = child_options();
    // No session bus in CI: without this Chromium waits for one.
    options.env["DBUS_SESSION_BUS_ADDRESS"] = "disabled:";
    const std::vector<std::string> common{chromium.string(),
                                          "--headless",
                                          "--no-sandbox",
                                          "--disable-gpu",
                                          "--no-first-run",
                                          "--disable-dev-shm-usage",
                                          "--user-data-dir=" + profile.string()};
    auto dump = common;
    dump.push_back("--dump-dom");
    dump.push_back("file://" + html.string());
    const RunResult dom = lockable::test::run(dump, options, kGuard);
    if (dom.exit_code != 0 && dom.out.empty()) {
      GTEST_SKIP() << "Chromium cannot start here: " << dom;
    }
    EXPECT_EQ(count_of(dom.out, "class=\"device-row\""), static_cast<std::size_t>(devices));
    EXPECT_NE(dom.out.find("id=\"bottleneck\""), std::string::npos);
    const fs::path png = dir_.path() / ("report" + std::to_string(devices) + ".png");
    auto shot = common;
    shot.push_back("--screenshot=" + png.string());
    shot.push_back(devices > 40 ? "--window-size=1280,2600" : "--window-size=1280,900");
    shot.push_back("file://" + html.string());
    const RunResult screenshot = lockable::test::run(shot, options, kGuard);
    EXPECT_EQ(screenshot.exit_code, 0) << screenshot;
    const std::string image = read_text(png);
    ASSERT_GT(image.size(), 1000u) << screenshot;
    EXPECT_EQ(image.substr(1, 3), "PNG");
  }
}

// `lockable ctest-spec` and RESOURCE_GROUPS: `ctest -j 6 --resource-spec-file` over 8 tests of
// one device each on 2 devices. CTest starts no more tests than devices, so no test ever waits
// in the lock queue (its CTest time holds no device wait), at most 2 hold devices at once, and
// each test locks the very device CTest assigned it.
TEST_F(MetricsCliTest, CtestWithResourceSpecRunsNoMoreTestsThanDevicesEachOnItsAssignedDevice) {
  write_file(resources_, R"([
    {"id": "Dut-P1", "online": true, "hostname": "e2e-host", "kind": "p"},
    {"id": "dut.p2", "online": true, "hostname": "e2e-host", "kind": "p"},
    {"id": "other-host", "online": true, "hostname": "elsewhere", "kind": "p"},
    {"id": "offline", "online": false, "hostname": "e2e-host", "kind": "p"}])");
  const fs::path spec = dir_.path() / "spec.json";
  const RunResult written =
      lockable::test::run({LOCKABLE_CLI_PATH, "ctest-spec", "--resources", resources_.string(),
                           "--hostname", "e2e-host", "-o", spec.string()},
                          child_options(), kGuard);
  ASSERT_EQ(written.exit_code, 0) << written;
  EXPECT_EQ(Json::parse(read_text(spec)),
            Json::parse(R"({"version": {"major": 1, "minor": 0}, "local": [{"devices": [
                {"id": "dut_p1", "slots": 1}, {"id": "dut_p2", "slots": 1}]}]})"));

  const fs::path build = dir_.path() / "ctest-build";
  const auto configure =
      lockable::test::run({CMAKE_COMMAND, "-S", CTEST_RESOURCES_PROJECT, "-B", build.string(), "-G",
                           "Ninja", std::string("-DPROGRAM=") + FIXTURE_PROGRAM,
                           std::string("-DLOCKABLE_GTEST_CMAKE=") + LOCKABLE_GTEST_CMAKE,
                           "-DRESOURCES=" + resources_.string(), "-DLOCK_FOLDER=" + locks_.string(),
                           "-DMETRICS=" + log_.string()},
                          child_options(), kGuard);
  ASSERT_EQ(configure.exit_code, 0) << configure;
  const auto ran = lockable::test::run({CTEST_COMMAND, "--test-dir", build.string(), "-j", "6",
                                        "--resource-spec-file", spec.string(), "-V"},
                                       child_options(), kGuard);
  ASSERT_EQ(ran.exit_code, 0) << ran;
  ASSERT_NE(ran.out.find("0 tests failed out of 8"), std::string::npos) << ran;

  // "<n>: [ LOCKABLE ] suite ParallelSuite: CTest assigned <id>" and "...: locked <device> (".
  std::map<std::string, std::string> assigned, locked;
  std::istringstream lines(ran.out);
  for (std::string line; std::getline(lines, line);) {
    const auto colon = line.find(": [ LOCKABLE ] suite ParallelSuite: ");
    if (colon == std::string::npos) continue;
    const std::string test = line.substr(0, colon);
    const std::string rest = line.substr(colon + 36);
    if (rest.rfind("CTest assigned ", 0) == 0) assigned[test] = rest.substr(15);
    if (rest.rfind("locked ", 0) == 0) locked[test] = rest.substr(7, rest.find(' ', 7) - 7);
  }
  ASSERT_EQ(assigned.size(), 8u) << ran.out;
  ASSERT_EQ(locked.size(), 8u) << ran.out;
  for (const auto& [test, device] : locked) {
    EXPECT_EQ(assigned[test], device == "Dut-P1" ? "dut_p1" : "dut_p2") << test << ": " << device;
  }

  // The allocation log: never a wait in the lock queue, never more than 2 holds at once.
  std::vector<std::pair<std::string, int>> edges;
  const auto lines_logged = lines_of(log_);
  ASSERT_EQ(lines_logged.size(), 8u);
  for (const auto& text : lines_logged) {
    const Json line = Json::parse(text);
    EXPECT_EQ(line["queued"], false)
        << "a test waited for a device inside its CTest time: " << text;
    edges.emplace_back(line["start"].get<std::string>(), +1);
    edges.emplace_back(line["release"].get<std::string>(), -1);
  }
  std::sort(edges.begin(), edges.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;  // ends first
  });
  int holding = 0, most = 0;
  for (const auto& [at, change] : edges) {
    holding += change;
    most = std::max(most, holding);
  }
  EXPECT_LE(most, 2);
}

TEST_F(MetricsCliTest, CtestSpecGroupsByAttributeAndRefusesCollidingIds) {
  write_file(resources_, R"([
    {"id": "a-1", "online": true, "hostname": "h", "type": "Phone"},
    {"id": "b", "online": true, "hostname": "h", "type": "board"},
    {"id": "c", "online": true, "hostname": "h"}])");
  const RunResult grouped =
      lockable::test::run({LOCKABLE_CLI_PATH, "ctest-spec", "--resources", resources_.string(),
                           "--hostname", "h", "--by", "type"},
                          child_options(), kGuard);
  ASSERT_EQ(grouped.exit_code, 0) << grouped;
  EXPECT_EQ(
      Json::parse(grouped.out)["local"][0],
      Json::parse(R"({"phone": [{"id": "a_1", "slots": 1}], "board": [{"id": "b", "slots": 1}],
                            "devices": [{"id": "c", "slots": 1}]})"));
  write_file(resources_, R"([
    {"id": "a-1", "online": true, "hostname": "h"}, {"id": "A_1", "online": true, "hostname": "h"}])");
  const RunResult collide = lockable::test::run(
      {LOCKABLE_CLI_PATH, "ctest-spec", "--resources", resources_.string(), "--hostname", "h"},
      child_options(), kGuard);
  EXPECT_EQ(collide.exit_code, 2) << collide;
  EXPECT_NE(collide.err.find("\"a-1\" and \"A_1\" both become the CTest id \"a_1\""),
            std::string::npos)
      << collide;
}

// --since/--until keep what overlaps the window and clip holds to it: each device of the
// synthetic log holds 10:00:0d..+6, 10:00:1d..+6 and 10:00:2d..+6 (d = its index).
TEST_F(MetricsCliTest, SinceAndUntilClipHoldsToTheWindow) {
  write_file(log_, synthetic_log(2));
  const RunResult result = lockable::test::run(
      {LOCKABLE_CLI_PATH, "report", "--format", "json", "--since", "2026-12-01T10:00:12Z",
       "--until", "2026-12-01T10:00:22Z", log_.string()},
      child_options(), kGuard);
  ASSERT_EQ(result.exit_code, 0) << result;
  const Json report = Json::parse(result.out);
  EXPECT_DOUBLE_EQ(report["window"]["seconds"].get<double>(), 10);
  // board-0: 10..16 clipped to 12..16 (4 s), 20..26 to 20..22 (2 s); board-1: 11..17 (5 s),
  // 21..27 (1 s). The holds at 00..06 and 01..07 lie outside.
  EXPECT_EQ(device_entry(report, "board-0")["allocations"], 2);
  EXPECT_DOUBLE_EQ(device_entry(report, "board-0")["total_hold"].get<double>(), 6);
  EXPECT_DOUBLE_EQ(device_entry(report, "board-1")["total_hold"].get<double>(), 6);
  EXPECT_DOUBLE_EQ(device_entry(report, "board-1")["utilization"].get<double>(), 0.6);
  const RunResult dates = lockable::test::run(
      {LOCKABLE_CLI_PATH, "report", "--format", "json", "--since", "2026-12-02", log_.string()},
      child_options(), kGuard);
  ASSERT_EQ(dates.exit_code, 0) << dates;
  EXPECT_TRUE(Json::parse(dates.out)["devices"].empty()) << dates.out;
}

// The OpenMetrics text is what Prometheus' own strict parser (python3-prometheus-client, in
// dev.sh) accepts, with the figures of the JSON report. Debian's python on purpose: a missing
// module fails the test.
TEST_F(MetricsCliTest, OpenMetricsOutputParsesWithPrometheusOwnParser) {
  write_file(log_, synthetic_log(3));
  const fs::path metrics = dir_.path() / "lockable.prom";
  const RunResult result =
      lockable::test::run({LOCKABLE_CLI_PATH, "report", "--format", "openmetrics", log_.string()},
                          child_options(), kGuard);
  ASSERT_EQ(result.exit_code, 0) << result;
  write_file(metrics, result.out);
  const RunResult parsed = lockable::test::run(
      {"/usr/bin/python3", "-c",
       "import sys\n"
       "from prometheus_client.openmetrics.parser import text_string_to_metric_families\n"
       "for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
       "    for s in family.samples:\n"
       "        print(s.name, s.labels.get('resource_id'), s.labels.get('quantile', '-'), "
       "float(s.value))\n",
       metrics.string()},
      child_options(), kGuard);
  ASSERT_EQ(parsed.exit_code, 0) << parsed;
  for (const char* sample : {"lockable_device_allocations_total board-1 - 3.0",
                             "lockable_device_losses_total board-2 - 1.0",
                             "lockable_device_hold_seconds_total board-0 - 18.0",
                             "lockable_device_queue_seconds board-0 1 4.0",
                             "lockable_device_queue_seconds_count board-0 - 3.0",
                             "lockable_device_timeouts_total board-2 - 1.0"}) {
    EXPECT_NE(parsed.out.find(sample), std::string::npos) << sample << "\n" << parsed.out;
  }
}

}  // namespace

// End-to-end tests of the GoogleTest plugin: build-tree test programs run as child processes
// against a resources.json and lock folder in a temporary directory; the assertions read their
// console output, exit code and XML/JSON reports.
#include "report_reader.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/case_name.hpp"
#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
#include "lockable/test/files.hpp"

namespace lockable::e2e {
namespace {

namespace fs = std::filesystem;
using Env = std::map<std::string, std::string>;
using test::CaseName;
using test::Child;
using test::read_text;
using test::run;
using test::RunResult;
using test::TempDir;
using test::write_file;

// How every program here starts: without the rig's own LOCKABLE_* and GTEST_* settings, with
// `env` on top (an empty value unsets), stdout and stderr together in `output`.
test::ChildOptions program_options(const Env& env, fs::path output) {
  test::ChildOptions options;
  options.env = env;
  options.drop_env_prefixes = {"LOCKABLE_", "GTEST_"};
  options.in = test::Stream::inherit();
  options.out = test::Stream::file(std::move(output));
  options.err = test::Stream::same_as_stdout();
  return options;
}

constexpr const char* kResources = R"([
  {"id": "dev-a1", "online": true, "hostname": "e2e-host", "kind": "a", "serial": "A1"},
  {"id": "dev-b1", "online": true, "hostname": "e2e-host", "kind": "b", "serial": "B1"},
  {"id": "dev-off", "online": false, "hostname": "e2e-host", "kind": "c"},
  {"id": "dev-far", "online": true, "hostname": "other-host", "kind": "c"},
  {"id": "dev-p1", "online": true, "hostname": "e2e-host", "kind": "p"},
  {"id": "dev-p2", "online": true, "hostname": "e2e-host", "kind": "p"}
])";

class PluginE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_file(resources(), kResources);
    fs::create_directories(locks());
  }

  fs::path dir() const { return temp_.path(); }
  fs::path resources() const { return dir() / "resources.json"; }
  fs::path locks() const { return dir() / "locks"; }
  fs::path xml(const std::string& name) const { return dir() / (name + ".xml"); }
  fs::path json(const std::string& name) const { return dir() / (name + ".json"); }

  // The program with the rig's flags and an XML or JSON report named `report`.
  std::vector<std::string> args(const char* program, const std::string& report,
                                std::vector<std::string> extra, bool as_json = false) const {
    std::vector<std::string> argv = {program, "--lockable_resources=" + resources().string(),
                                     "--lockable_lock_folder=" + locks().string(),
                                     "--lockable_hostname", "e2e-host"};
    argv.push_back(as_json ? "--gtest_output=json:" + json(report).string()
                           : "--gtest_output=xml:" + xml(report).string());
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  RunResult run_program(const std::vector<std::string>& argv, const Env& env = {}) {
    return run(argv, program_options(env, output_file()));
  }

  fs::path output_file() { return dir() / ("out-" + std::to_string(runs_++) + ".txt"); }

  // The fixture program holding dev-a1 (kind=a) in a test until `release_file` exists, with `env`
  // beside its requirements, its report named `report`.
  Child program_holding(const std::string& report, Env env, const fs::path& release_file) {
    env["E2E_REQUIREMENTS"] = "kind=a";
    env["E2E_RELEASE_FILE"] = release_file.string();
    return Child(args(FIXTURE_PROGRAM, report, {"--gtest_filter=HeldSuite.HoldsTheDevice"}),
                 program_options(env, output_file()));
  }

 private:
  TempDir temp_;
  int runs_ = 0;
};

bool is_uuid(const std::string& text) {
  static const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
  return std::regex_match(text, uuid);
}

bool is_seconds_with_ms(const std::string& text) {
  static const std::regex seconds("[0-9]+\\.[0-9]{3}");
  return std::regex_match(text, seconds);
}

// A report message's first line is its location: true when it is a line of `file` (the user's
// test source), not of the plugin.
bool points_at(const std::string& message, const std::string& file) {
  static const std::regex location("(.*/)?([^/]+):[0-9]+");
  std::smatch match;
  const std::string first_line = message.substr(0, message.find('\n'));
  return std::regex_match(first_line, match, location) && match[2] == file;
}

void expect_no_test_passed(const SuiteReport& suite) {
  ASSERT_FALSE(suite.tests.empty());
  for (const auto& test : suite.tests) {
    EXPECT_TRUE(test.result == "skipped" || test.failed)
        << suite.name << "." << test.name << " ran without its device: result=" << test.result;
  }
}

TEST_F(PluginE2eTest, SuitePropertiesLandInXmlAndJsonReports) {
  const Env env = {{"E2E_REQUIREMENTS", R"({"kind": "a"})"}, {"E2E_HOLD_MS", "50"}};
  const auto xml_run =
      run_program(args(FIXTURE_PROGRAM, "suite", {"--gtest_filter=HeldSuite.*"}), env);
  ASSERT_EQ(xml_run.exit_code, 0) << xml_run.output();
  const auto json_run = run_program(
      args(FIXTURE_PROGRAM, "suite", {"--gtest_filter=HeldSuite.*"}, /*as_json=*/true), env);
  ASSERT_EQ(json_run.exit_code, 0) << json_run.output();
  EXPECT_NE(xml_run.output().find("[ LOCKABLE ] suite HeldSuite: locked dev-a1"), std::string::npos)
      << xml_run.output();

  for (const auto& report : {read_xml_report(xml("suite")), read_json_report(json("suite"))}) {
    const auto& suite = report.suite("HeldSuite");
    EXPECT_EQ(suite.get("lockable_resource_id"), "dev-a1");
    EXPECT_TRUE(is_uuid(suite.get("lockable_alloc_id"))) << suite.get("lockable_alloc_id");
    EXPECT_EQ(suite.get("lockable_requirements"), R"({"kind":"a"})");
    EXPECT_TRUE(is_seconds_with_ms(suite.get("lockable_allocation_queue_time")))
        << suite.get("lockable_allocation_queue_time");
    EXPECT_TRUE(is_seconds_with_ms(suite.get("lockable_allocation_duration")))
        << suite.get("lockable_allocation_duration");
    EXPECT_FALSE(suite.has("lockable_error"));

    // Each test carries the suite's allocation as its own properties (<property> children in
    // XML), where JUnit readers look; the duration is known only at the release.
    ASSERT_EQ(suite.tests.size(), 2u);
    for (const auto& test : suite.tests) {
      for (const char* key : {"lockable_resource_id", "lockable_alloc_id", "lockable_requirements",
                              "lockable_allocation_queue_time", "lockable_allocation_start_time"}) {
        EXPECT_EQ(test.get(key), suite.get(key)) << test.name << ": " << key;
      }
      EXPECT_FALSE(test.has("lockable_allocation_duration")) << test.name;
    }

    // The allocation covers the suite's run: GoogleTest times the suite after SetUpTestSuite
    // (the lock) and before TearDownTestSuite (the unlock). 2 ms of slack for rounding.
    const long long held = parse_seconds_ms(suite.get("lockable_allocation_duration"));
    const long long suite_time = parse_seconds_ms(suite.get("time"));
    EXPECT_GE(suite_time, 50) << "HoldsTheDevice sleeps 50 ms";
    EXPECT_GE(held, suite_time - 2);
    // Only the XML timestamp has milliseconds (JSON's is whole seconds in 1.12).
    if (suite.get("timestamp").find('.') != std::string::npos) {
      const long long start = parse_time_ms(suite.get("lockable_allocation_start_time"));
      const long long suite_start = parse_time_ms(suite.get("timestamp"));
      EXPECT_LE(start, suite_start + 2);
      EXPECT_GE(start + held, suite_start + suite_time - 2);
    }
  }
}

TEST_F(PluginE2eTest, SuiteWithTwoDevicesNumbersItsProperties) {
  const auto result =
      run_program(args(FIXTURE_PROGRAM, "two", {"--gtest_filter=TwoDeviceSuite.*"}));
  ASSERT_EQ(result.exit_code, 0) << result.output();
  const auto report = read_xml_report(xml("two"));
  const auto& suite = report.suite("TwoDeviceSuite");
  EXPECT_EQ(suite.get("lockable_resource_id_1"), "dev-a1");
  EXPECT_EQ(suite.get("lockable_resource_id_2"), "dev-b1");
  EXPECT_EQ(suite.get("lockable_requirements_1"), R"({"kind":"a"})");
  EXPECT_EQ(suite.get("lockable_requirements_2"), R"({"kind":"b"})");
  for (const char* base : {"lockable_alloc_id", "lockable_allocation_queue_time",
                           "lockable_allocation_start_time", "lockable_allocation_duration"}) {
    EXPECT_TRUE(suite.has(std::string(base) + "_1")) << base;
    EXPECT_TRUE(suite.has(std::string(base) + "_2")) << base;
  }
  EXPECT_NE(suite.get("lockable_alloc_id_1"), suite.get("lockable_alloc_id_2"));
  EXPECT_FALSE(suite.has("lockable_resource_id"));
}

// A holder process keeps dev-a1 until a file appears; a second process asks for it meanwhile.
TEST_F(PluginE2eTest, QueueTimeGrowsWhileAnotherProcessHoldsTheDevice) {
  const Env env = {{"E2E_REQUIREMENTS", "kind=a"},
                   {"E2E_RELEASE_FILE", (dir() / "release").string()}};
  Child holder(args(FIXTURE_PROGRAM, "holder", {"--gtest_filter=HeldSuite.HoldsTheDevice"}),
               program_options(env, output_file()));
  holder.wait_for_output("suite HeldSuite: locked dev-a1");

  Child waiter(args(FIXTURE_PROGRAM, "waiter",
                    {"--gtest_filter=HeldSuite.ReadsTheLockedDevice", "--lockable_timeout=30"}),
               program_options({{"E2E_REQUIREMENTS", "kind=a"}}, output_file()));
  waiter.wait_for_output("suite HeldSuite: locking a device");
  // The waiter announces itself just before it asks; give it time to queue.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto released_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  write_file(dir() / "release", "");
  ASSERT_EQ(holder.wait(), 0) << holder.output();
  ASSERT_EQ(waiter.wait(), 0) << waiter.output();

  const auto first = read_xml_report(xml("holder")).suite("HeldSuite");
  const auto second = read_xml_report(xml("waiter")).suite("HeldSuite");
  EXPECT_EQ(second.get("lockable_resource_id"), "dev-a1");
  const long long first_queue = parse_seconds_ms(first.get("lockable_allocation_queue_time"));
  const long long second_queue = parse_seconds_ms(second.get("lockable_allocation_queue_time"));
  EXPECT_GT(second_queue, first_queue);
  // The holder released only after the release file appeared, so the second grant came later
  // (1 ms of slack: the start time is written in whole milliseconds).
  EXPECT_GE(parse_time_ms(second.get("lockable_allocation_start_time")) + 1, released_at);
}

// A red CI: every test of the suite is a failure whose message is the reason (GoogleTest 1.12.1
// would report a SetUpTestSuite failure as skipped tests without the text), in XML and JSON.
TEST_F(PluginE2eTest, NoMatchFailsEveryTestOfTheSuiteWithTheReason) {
  for (const bool as_json : {false, true}) {
    const auto result =
        run_program(args(FIXTURE_PROGRAM, "nomatch", {"--gtest_filter=HeldSuite.*"}, as_json),
                    {{"E2E_REQUIREMENTS", "kind=c"}});
    EXPECT_EQ(result.exit_code, 1) << result.output();
    EXPECT_NE(result.output().find("could not lock a device for {\"kind\":\"c\"}"),
              std::string::npos)
        << result.output();
    EXPECT_NE(result.output().find("dev-off"), std::string::npos) << result.output();
    EXPECT_NE(result.output().find("dev-far"), std::string::npos) << result.output();
    EXPECT_NE(result.output().find("2 FAILED TESTS"), std::string::npos) << result.output();
    EXPECT_EQ(result.output().find("SKIPPED"), std::string::npos) << result.output();
    // The failures point at the user's tests, not at the plugin.
    EXPECT_NE(result.output().find("fixture_program.cpp:"), std::string::npos) << result.output();
    EXPECT_EQ(result.output().find("plugin/"), std::string::npos) << result.output();

    // read_json_report rejects invalid JSON.
    const auto report =
        as_json ? read_json_report(json("nomatch")) : read_xml_report(xml("nomatch"));
    const auto& suite = report.suite("HeldSuite");
    const std::string error = suite.get("lockable_error");
    EXPECT_NE(error.find("dev-off"), std::string::npos) << error;
    EXPECT_NE(error.find("dev-far"), std::string::npos) << error;
    EXPECT_NE(error.find("on_unavailable=fail"), std::string::npos) << error;
    EXPECT_FALSE(suite.has("lockable_resource_id"));
    EXPECT_EQ(suite.get("failures"), "2");
    ASSERT_EQ(suite.tests.size(), 2u);
    for (const auto& test : suite.tests) {
      EXPECT_TRUE(test.failed) << test.name;
      EXPECT_NE(test.result, "skipped") << test.name;
      EXPECT_TRUE(points_at(test.message, "fixture_program.cpp")) << test.message;
      EXPECT_NE(test.message.find(error), std::string::npos) << test.message;
    }
  }
}

TEST_F(PluginE2eTest, NoMatchWithSkipReportsTheTestsSkippedWithTheReason) {
  const auto result =
      run_program(args(FIXTURE_PROGRAM, "skip",
                       {"--gtest_filter=HeldSuite.*", "--lockable_on_unavailable=skip"},
                       /*as_json=*/false),
                  {{"E2E_REQUIREMENTS", "kind=c"}});
  EXPECT_EQ(result.exit_code, 0) << result.output();
  EXPECT_NE(result.output().find("[  SKIPPED ] 2 tests"), std::string::npos) << result.output();
  EXPECT_NE(result.output().find("dev-off"), std::string::npos) << result.output();

  const auto suite = read_xml_report(xml("skip")).suite("HeldSuite");
  EXPECT_NE(suite.get("lockable_error").find("on_unavailable=skip"), std::string::npos);
  ASSERT_EQ(suite.tests.size(), 2u);
  for (const auto& test : suite.tests) {
    EXPECT_EQ(test.result, "skipped") << test.name;
    EXPECT_FALSE(test.failed) << test.name;
    EXPECT_NE(test.message.find("dev-far"), std::string::npos) << test.message;
    // At the user's TEST_F, not at the plugin's header.
    EXPECT_TRUE(points_at(test.message, "fixture_program.cpp")) << test.message;
  }
  EXPECT_EQ(result.output().find("lockable_test.hpp"), std::string::npos) << result.output();
}

TEST_F(PluginE2eTest, TimeoutFailsTheSuiteNamingTheHolder) {
  Child holder(args(FIXTURE_PROGRAM, "holder", {"--gtest_filter=HeldSuite.HoldsTheDevice"}),
               program_options({{"E2E_REQUIREMENTS", "kind=a"},
                                {"E2E_RELEASE_FILE", (dir() / "release").string()}},
                               output_file()));
  holder.wait_for_output("suite HeldSuite: locked dev-a1");

  const auto result = run_program(
      args(FIXTURE_PROGRAM, "timeout",
           {"--gtest_filter=HeldSuite.ReadsTheLockedDevice", "--lockable_timeout", "0.3"}),
      {{"E2E_REQUIREMENTS", "kind=a"}});
  write_file(dir() / "release", "");
  EXPECT_EQ(holder.wait(), 0) << holder.output();

  EXPECT_EQ(result.exit_code, 1) << result.output();
  const std::string holder_pid = "pid " + std::to_string(holder.pid());
  EXPECT_NE(result.output().find("dev-a1"), std::string::npos) << result.output();
  EXPECT_NE(result.output().find(holder_pid), std::string::npos) << result.output();
  const auto suite = read_xml_report(xml("timeout")).suite("HeldSuite");
  EXPECT_NE(suite.get("lockable_error").find(holder_pid), std::string::npos)
      << suite.get("lockable_error");
  expect_no_test_passed(suite);
}

struct BadFlagCase {
  const char* name;
  std::vector<std::string> args;
  Env env;
  const char* named;  // what the error must name
};

class BadFlagTest : public PluginE2eTest, public ::testing::WithParamInterface<BadFlagCase> {};

TEST_P(BadFlagTest, ExitsWithTwoNamingTheFlagBeforeAnyTestRuns) {
  for (const char* program : {FIXTURE_PROGRAM, PLAIN_PROGRAM}) {
    const auto result = run_program(args(program, "bad", GetParam().args), GetParam().env);
    EXPECT_EQ(result.exit_code, 2) << program << "\n" << result.output();
    EXPECT_NE(result.output().find(GetParam().named), std::string::npos) << program << "\n"
                                                                         << result.output();
    EXPECT_EQ(result.output().find("[ RUN      ]"), std::string::npos) << result.output();
    EXPECT_FALSE(fs::exists(xml("bad")));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Flags, BadFlagTest,
    ::testing::Values(
        BadFlagCase{"UnknownFlag", {"--lockable_bogus=1"}, {}, "unknown flag --lockable_bogus"},
        BadFlagCase{"DashedFlag", {"--lockable-timeout=1"}, {}, "--lockable_timeout"},
        BadFlagCase{"BadTimeout", {"--lockable_timeout=abc"}, {}, "--lockable_timeout"},
        BadFlagCase{
            "NegativeTimeoutInEnvironment", {}, {{"LOCKABLE_TIMEOUT", "-1"}}, "LOCKABLE_TIMEOUT"},
        BadFlagCase{"BadOnUnavailable",
                    {"--lockable_on_unavailable=maybe"},
                    {},
                    "--lockable_on_unavailable: must be \"fail\" or \"skip\""},
        BadFlagCase{"BadRequirements",
                    {"--lockable_requirements={\"kind\": "},
                    {},
                    "--lockable_requirements: invalid requirements"},
        BadFlagCase{
            "MissingValue", {"--lockable_timeout"}, {}, "--lockable_timeout needs a value"}),
    CaseName());

struct BadResourcesCase {
  const char* name;
  std::string file;
  const char* named;
};

class BadResourcesTest : public PluginE2eTest,
                         public ::testing::WithParamInterface<BadResourcesCase> {};

// Always a failure, even with on_unavailable=skip: the rig is misconfigured.
TEST_P(BadResourcesTest, FailsTheSuiteNamingTheFileEvenWithSkip) {
  auto argv = args(FIXTURE_PROGRAM, "badres",
                   {"--gtest_filter=HeldSuite.*", "--lockable_on_unavailable=skip",
                    "--lockable_resources=" + GetParam().file});
  const auto result = run_program(argv);
  EXPECT_EQ(result.exit_code, 1) << result.output();
  EXPECT_NE(result.output().find(GetParam().named), std::string::npos) << result.output();
  const auto suite = read_xml_report(xml("badres")).suite("HeldSuite");
  EXPECT_NE(suite.get("lockable_error").find(GetParam().named), std::string::npos)
      << suite.get("lockable_error");
  EXPECT_EQ(suite.get("lockable_error").find("on_unavailable"), std::string::npos);
  expect_no_test_passed(suite);
}

INSTANTIATE_TEST_SUITE_P(
    Files, BadResourcesTest,
    ::testing::Values(BadResourcesCase{"SyntaxError", BROKEN_RESOURCES_DIR "/syntax_error.json",
                                       "syntax_error.json"},
                      BadResourcesCase{"BadFields", BROKEN_RESOURCES_DIR "/bad_fields.json",
                                       "bad_fields.json"},
                      BadResourcesCase{"Missing", "/nonexistent/lockable-e2e/resources.json",
                                       "/nonexistent/lockable-e2e/resources.json"}),
    CaseName());

TEST_F(PluginE2eTest, GtestMainWithOnlyRequirementsGivesAPlainProgramADevice) {
  const auto result =
      run_program(args(PLAIN_PROGRAM, "global", {"--lockable_requirements=kind=b"}));
  ASSERT_EQ(result.exit_code, 0) << result.output();
  EXPECT_NE(result.output().find("[  PASSED  ] 2 tests"), std::string::npos) << result.output();
  EXPECT_NE(result.output().find("global environment: locked dev-b1"), std::string::npos)
      << result.output();

  const auto report = read_xml_report(xml("global"));
  EXPECT_EQ(report.get("lockable_resource_id"), "dev-b1");
  EXPECT_EQ(report.get("lockable_requirements"), R"({"kind":"b"})");
  EXPECT_TRUE(is_uuid(report.get("lockable_alloc_id")));
  EXPECT_TRUE(is_seconds_with_ms(report.get("lockable_allocation_duration")));
  // The device is held across every suite (2 ms of slack for rounding).
  const long long start = parse_time_ms(report.get("lockable_allocation_start_time"));
  const long long end = start + parse_seconds_ms(report.get("lockable_allocation_duration"));
  const auto& suite = report.suite("PlainTest");
  EXPECT_LE(start, parse_time_ms(suite.get("timestamp")) + 2);
  EXPECT_GE(end + 2, parse_time_ms(suite.get("timestamp")) + parse_seconds_ms(suite.get("time")));
  EXPECT_FALSE(report.suite("PlainTest").has("lockable_resource_id"));
  // Each test carries the global device, prefixed so as not to clash with a suite's own.
  for (const auto& test : suite.tests) {
    EXPECT_EQ(test.get("lockable_global_resource_id"), "dev-b1") << test.name;
    EXPECT_EQ(test.get("lockable_global_alloc_id"), report.get("lockable_alloc_id")) << test.name;
    EXPECT_EQ(test.get("lockable_global_requirements"), R"({"kind":"b"})") << test.name;
    EXPECT_FALSE(test.has("lockable_resource_id")) << test.name;
  }
}

TEST_F(PluginE2eTest, GtestMainTakesItsWholeConfigurationFromTheEnvironment) {
  const Env env = {{"LOCKABLE_REQUIREMENTS", R"({"kind": "a"})"},
                   {"LOCKABLE_RESOURCES", resources().string()},
                   {"LOCKABLE_LOCK_FOLDER", locks().string()},
                   {"LOCKABLE_HOSTNAME", "e2e-host"},
                   {"GTEST_OUTPUT", "json:" + json("env").string()}};
  const auto result = run_program({PLAIN_PROGRAM}, env);
  ASSERT_EQ(result.exit_code, 0) << result.output();
  const auto report = read_json_report(json("env"));
  EXPECT_EQ(report.get("lockable_resource_id"), "dev-a1");
  EXPECT_TRUE(report.has("lockable_allocation_start_time"));
  EXPECT_FALSE(report.has("lockable_fencing_token")) << "the lock folder issues no tokens";
}

TEST_F(PluginE2eTest, OverEtcdTheReportHasTheFencingToken) {
  if (!lockable::test::etcd_program())
    GTEST_SKIP() << "no etcd on PATH (apt-get install etcd-server)";
  lockable::test::EtcdServer etcd;
  const Env env = {
      {"LOCKABLE_REQUIREMENTS", R"({"kind": "a"})"},
      {"LOCKABLE_RESOURCES", resources().string()},
      {"LOCKABLE_LOCK_BACKEND", "etcd://127.0.0.1:" + std::to_string(etcd.client_port()) + "/e2e"},
      {"LOCKABLE_HOSTNAME", "e2e-host"},
      {"GTEST_OUTPUT", "json:" + json("etcd").string()}};
  const auto result = run_program({PLAIN_PROGRAM}, env);
  ASSERT_EQ(result.exit_code, 0) << result.output();
  const auto report = read_json_report(json("etcd"));
  EXPECT_EQ(report.get("lockable_resource_id"), "dev-a1");
  const std::string token = report.get("lockable_fencing_token");
  EXPECT_FALSE(token.empty());
  EXPECT_EQ(token.find_first_not_of("0123456789"), std::string::npos) << token;
}

TEST_F(PluginE2eTest, OwnMainWithInitReadsTheGlobalDevice) {
  const auto result =
      run_program(args(FIXTURE_PROGRAM, "own",
                       {"--gtest_filter=GlobalDeviceTest.*", "--lockable_requirements", "kind=a"}));
  ASSERT_EQ(result.exit_code, 0) << result.output();
  const auto report = read_xml_report(xml("own"));
  EXPECT_EQ(report.get("lockable_resource_id"), "dev-a1");
  ASSERT_EQ(report.suite("GlobalDeviceTest").tests.size(), 1u);
  EXPECT_EQ(report.suite("GlobalDeviceTest").tests[0].result, "completed");
}

TEST_F(PluginE2eTest, SuiteWantingOnlyTheProgramsOwnDeviceFailsAtOnceNamingIt) {
  // hw_tests --lockable_requirements=type=psu, and a suite asking for type=psu: the only match
  // is the program's own device. It used to wait the whole timeout for itself.
  const auto started = std::chrono::steady_clock::now();
  const auto result = run_program(args(FIXTURE_PROGRAM, "self",
                                       {"--gtest_filter=HeldSuite.*", "--lockable_requirements",
                                        "kind=a", "--lockable_timeout", "600"}),
                                  {{"E2E_REQUIREMENTS", "kind=a"}});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60))
      << "the suite waited for its own program's device";
  EXPECT_EQ(result.exit_code, 1) << result.output();
  const auto report = read_xml_report(xml("self"));
  const std::string global_alloc = report.get("lockable_alloc_id");
  ASSERT_TRUE(is_uuid(global_alloc)) << result.output();
  const auto& suite = report.suite("HeldSuite");
  const std::string error = suite.get("lockable_error");
  EXPECT_NE(error.find("dev-a1: held by this very thread"), std::string::npos) << error;
  EXPECT_NE(error.find(global_alloc), std::string::npos) << error;
  for (const auto& test : suite.tests) EXPECT_TRUE(test.failed) << test.name;
}

TEST_F(PluginE2eTest, GlobalDeviceUnavailableFailsEveryTestWithoutRunningIt) {
  for (const bool as_json : {false, true}) {
    const auto result =
        run_program(args(PLAIN_PROGRAM, "noglobal", {"--lockable_requirements=kind=zzz"}, as_json));
    EXPECT_EQ(result.exit_code, 1) << result.output();
    EXPECT_NE(result.output().find("[  FAILED  ] 2 tests"), std::string::npos) << result.output();
    // JSON: 1.12.1 writes invalid JSON when an environment's SetUp fails; the plugin fails the
    // tests instead, and read_json_report rejects invalid JSON.
    const auto report =
        as_json ? read_json_report(json("noglobal")) : read_xml_report(xml("noglobal"));
    const std::string error = report.get("lockable_error");
    EXPECT_NE(error.find("global environment could not lock"), std::string::npos) << error;
    ASSERT_EQ(report.suites.size(), 1u) << "no NonTestSuiteFailure entry";
    ASSERT_EQ(report.suite("PlainTest").tests.size(), 2u);
    for (const auto& test : report.suite("PlainTest").tests) {
      EXPECT_TRUE(test.failed) << test.name;
      EXPECT_TRUE(points_at(test.message, "plain_program.cpp")) << test.message;
      EXPECT_NE(test.message.find(error), std::string::npos) << test.message;
    }
  }
}

TEST_F(PluginE2eTest, GlobalDeviceUnavailableWithSkipSkipsEveryTest) {
  const auto result =
      run_program(args(PLAIN_PROGRAM, "skipglobal",
                       {"--lockable_requirements=kind=c", "--lockable_on_unavailable=skip"}));
  EXPECT_EQ(result.exit_code, 0) << result.output();
  const auto report = read_xml_report(xml("skipglobal"));
  EXPECT_NE(report.get("lockable_error").find("dev-off"), std::string::npos);
  for (const auto& test : report.suite("PlainTest").tests) {
    EXPECT_EQ(test.result, "skipped") << test.name;
    EXPECT_FALSE(test.failed) << test.name;
    EXPECT_TRUE(points_at(test.message, "plain_program.cpp")) << test.message;
    EXPECT_NE(test.message.find("dev-off"), std::string::npos) << test.message;
  }
}

TEST_F(PluginE2eTest, ADeviceLostMidSuiteFailsTheRunningTestAndStopsTheSuite) {
  // The program locks through a backend whose lock it revokes during the first test, as a lease
  // backend reports an expired lease from its keepalive thread.
  const auto result = run_program({LOSS_PROGRAM, "--gtest_output=xml:" + xml("loss").string()});
  EXPECT_EQ(result.exit_code, 1) << result.output();
  EXPECT_EQ(result.output().find("B_BODY_RAN"), std::string::npos) << result.output();
  // Failures point at the user's tests, not at the plugin's source.
  EXPECT_NE(result.output().find("loss_program.cpp:"), std::string::npos) << result.output();
  EXPECT_EQ(result.output().find("plugin/"), std::string::npos) << result.output();
  EXPECT_NE(result.output().find("[ LOCKABLE ] suite LosingSuite lost device lose-1"),
            std::string::npos)
      << result.output();

  const auto report = read_xml_report(xml("loss"));
  const auto& losing = report.suite("LosingSuite");
  ASSERT_EQ(losing.tests.size(), 2u);
  for (const auto& test : losing.tests) {
    EXPECT_TRUE(test.failed) << test.name;
    EXPECT_NE(test.message.find("lost device lose-1 while holding it (lose-1: lease expired)"),
              std::string::npos)
        << test.name << ": " << test.message;
  }
  EXPECT_NE(losing.get("lockable_lost").find("lose-1: lease expired"), std::string::npos);
  EXPECT_EQ(losing.get("lockable_resource_id"), "lose-1");

  const auto& keeping = report.suite("KeepingSuite");
  ASSERT_EQ(keeping.tests.size(), 1u);
  EXPECT_FALSE(keeping.tests.front().failed) << keeping.tests.front().message;
  EXPECT_FALSE(keeping.has("lockable_lost"));
}

TEST_F(PluginE2eTest, FixtureWithoutInitTakesItsConfigurationFromTheEnvironment) {
  const Env env = {{"LOCKABLE_RESOURCES", resources().string()},
                   {"LOCKABLE_LOCK_FOLDER", locks().string()},
                   {"LOCKABLE_HOSTNAME", "e2e-host"},
                   {"E2E_REQUIREMENTS", "kind=b"}};
  const auto result = run_program({NO_INIT_PROGRAM, "--gtest_filter=HeldSuite.*",
                                   "--gtest_output=xml:" + xml("noinit").string()},
                                  env);
  ASSERT_EQ(result.exit_code, 0) << result.output();
  EXPECT_EQ(read_xml_report(xml("noinit")).suite("HeldSuite").get("lockable_resource_id"),
            "dev-b1");
}

TEST_F(PluginE2eTest, FixtureWithoutInitFailsTheSuiteOnABadVariable) {
  const Env env = {{"LOCKABLE_RESOURCES", resources().string()},
                   {"LOCKABLE_LOCK_FOLDER", locks().string()},
                   {"LOCKABLE_HOSTNAME", "e2e-host"},
                   {"LOCKABLE_TIMEOUT", "soon"}};
  const auto result = run_program({NO_INIT_PROGRAM, "--gtest_filter=HeldSuite.*",
                                   "--gtest_output=xml:" + xml("badenv").string()},
                                  env);
  EXPECT_EQ(result.exit_code, 1) << result.output();
  const auto suite = read_xml_report(xml("badenv")).suite("HeldSuite");
  EXPECT_NE(suite.get("lockable_error").find("LOCKABLE_TIMEOUT: must be a number of seconds"),
            std::string::npos)
      << suite.get("lockable_error");
  expect_no_test_passed(suite);
}

TEST_F(PluginE2eTest, ExitMidSuiteReleasesTheLockForTheNextProcess) {
  const auto exiting = run_program(args(FIXTURE_PROGRAM, "exit", {"--gtest_filter=ExitingSuite.*"}),
                                   {{"E2E_EXIT", "1"}});
  ASSERT_EQ(exiting.exit_code, 3) << exiting.output();
  ASSERT_NE(exiting.output().find("ExitingSuite holds dev-a1"), std::string::npos)
      << exiting.output();
  // The plugin released the lock itself (the kernel alone would leave the pid in the file).
  EXPECT_EQ(read_text(locks() / "dev-a1.pid"), "");

  const auto next =
      run_program(args(FIXTURE_PROGRAM, "next",
                       {"--gtest_filter=HeldSuite.ReadsTheLockedDevice", "--lockable_timeout=0"}),
                  {{"E2E_REQUIREMENTS", "kind=a"}});
  ASSERT_EQ(next.exit_code, 0) << next.output();
  EXPECT_EQ(read_xml_report(xml("next")).suite("HeldSuite").get("lockable_resource_id"), "dev-a1");
}

struct SignalCase {
  const char* name;
  int signal;
};

// Restores a signal's default action in this process (and so in the children it starts): a
// SIGINT that the test's parent ignores (a shell's background job) would be inherited, and the
// plugin rightly leaves an ignored signal alone.
class DefaultSignalAction {
 public:
  explicit DefaultSignalAction(int signal) : signal_(signal) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    ::sigaction(signal_, &default_action, &saved_);
  }
  ~DefaultSignalAction() { ::sigaction(signal_, &saved_, nullptr); }
  DefaultSignalAction(const DefaultSignalAction&) = delete;
  DefaultSignalAction& operator=(const DefaultSignalAction&) = delete;

 private:
  int signal_;
  struct sigaction saved_ {};
};

// True when nobody holds the flock of `path` (we can take it at once).
bool flock_is_free(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return free;
}

// A moment of a program's life with dev-a1, and how a test brings it about: the fixture's
// settings beside its requirements, and the output that says the moment has come.
struct HeldMoment {
  const char* name;
  Env env;
  const char* awaited;
};

// Holding the device in a test.
const HeldMoment kHolding{"Holding", {}, "suite HeldSuite: locked dev-a1"};
// Between the grant and the moment the plugin files the device under its suite, held open by a
// test hook: "no device was held" and a lock file naming a dead process were the result before
// (a lease backend would keep the device until its TTL).
const HeldMoment kRightAfterTheGrant{"RightAfterTheGrant",
                                     {{"LOCKABLE_TEST_PAUSE_AFTER_LOCK_MS", "2000"}},
                                     "lockable: test pause after the lock"};
// While a test reads its allocation on the main thread: the release on the plugin's signal thread
// must not destroy the lock object under it (a data race and a use after free before, which TSan
// reports in the sanitizer stage of CI).
const HeldMoment kWhileATestReadsItsAllocation{
    "WhileATestReadsItsAllocation", {{"E2E_READ_WHILE_HOLDING", "1"}}, "READING"};

struct SignalAtMoment {
  std::string name;
  SignalCase signal;
  HeldMoment moment;
};
void PrintTo(const SignalAtMoment& row, std::ostream* out) { *out << row.name; }

std::vector<SignalAtMoment> signals_at_moments() {
  std::vector<SignalAtMoment> rows;
  for (const auto& moment : {kHolding, kRightAfterTheGrant, kWhileATestReadsItsAllocation}) {
    for (const auto& signal : {SignalCase{"SIGINT", SIGINT}, SignalCase{"SIGTERM", SIGTERM}}) {
      rows.push_back({std::string(moment.name) + "_" + signal.name, signal, moment});
    }
  }
  return rows;
}

class SignalAtMomentTest : public PluginE2eTest,
                           public ::testing::WithParamInterface<SignalAtMoment> {};

// Ctrl-C, a cancelled CI job, ctest's timeout: the program is killed at any moment of its hold.
// GoogleTest writes no report then; the plugin must release the device (the kernel alone would
// free the flock but leave the dead pid in the lock file), say so, and still die by the signal.
TEST_P(SignalAtMomentTest, ReleasesTheDeviceSaysSoAndDiesByTheSignal) {
  const int signal = GetParam().signal.signal;
  const DefaultSignalAction default_action(signal);
  Child holder = program_holding("signal", GetParam().moment.env, dir() / "never");
  holder.wait_for_output(GetParam().moment.awaited);
  ASSERT_EQ(read_text(locks() / "dev-a1.pid"), std::to_string(holder.pid()) + "\n");

  holder.send_signal(signal);
  EXPECT_EQ(holder.wait(), 128 + signal) << holder.output();
  EXPECT_EQ(holder.term_signal(), signal) << holder.output();
  EXPECT_NE(holder.output().find("lockable: " + std::string(GetParam().signal.name) +
                                 ": released dev-a1; no report is written\n"),
            std::string::npos)
      << holder.output();
  EXPECT_EQ(read_text(locks() / "dev-a1.pid"), "");
  EXPECT_TRUE(flock_is_free(locks() / "dev-a1.pid"));
  EXPECT_FALSE(fs::exists(xml("signal")));
}

INSTANTIATE_TEST_SUITE_P(Signals, SignalAtMomentTest, ::testing::ValuesIn(signals_at_moments()),
                         CaseName());

// Ctrl-Z right after the grant, then `fg`: stopped, the program keeps the device (another program
// times out naming it); continued, it runs its tests, reports the device and releases it. SIGSTOP
// stands for Ctrl-Z's SIGTSTP: the plugin handles neither, and the kernel discards SIGTSTP sent to
// an orphaned process group (as a test runner's may be).
TEST_F(PluginE2eTest, StoppedRightAfterTheGrantKeepsTheDeviceAndGoesOnWhenContinued) {
  const fs::path release = dir() / "release";
  Child holder = program_holding("stopped", kRightAfterTheGrant.env, release);
  holder.wait_for_output(kRightAfterTheGrant.awaited);
  holder.send_signal(SIGSTOP);
  const auto stop_guard = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (test::process_state(holder.pid()) != 'T' &&
         std::chrono::steady_clock::now() < stop_guard) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(test::process_state(holder.pid()), 'T');
  // Longer than the hook's pause: the stop, not the pause, is what keeps the program here.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));

  const auto other = run_program(
      args(FIXTURE_PROGRAM, "other",
           {"--gtest_filter=HeldSuite.ReadsTheLockedDevice", "--lockable_timeout", "0.3"}),
      {{"E2E_REQUIREMENTS", "kind=a"}});
  EXPECT_EQ(other.exit_code, 1) << other.output();
  EXPECT_NE(other.output().find("pid " + std::to_string(holder.pid())), std::string::npos)
      << other.output();
  EXPECT_EQ(read_text(locks() / "dev-a1.pid"), std::to_string(holder.pid()) + "\n");

  holder.send_signal(SIGCONT);
  write_file(release, "");
  EXPECT_EQ(holder.wait(), 0) << holder.output();
  EXPECT_EQ(read_xml_report(xml("stopped")).suite("HeldSuite").get("lockable_resource_id"),
            "dev-a1");
  EXPECT_EQ(read_text(locks() / "dev-a1.pid"), "");
  EXPECT_TRUE(flock_is_free(locks() / "dev-a1.pid"));
}

// A program that handles SIGTERM itself keeps its handler: the plugin installs none over it.
TEST_F(PluginE2eTest, AProgramsOwnSignalHandlerWins) {
  const DefaultSignalAction default_action(SIGTERM);
  Child holder(args(FIXTURE_PROGRAM, "own", {"--gtest_filter=HeldSuite.HoldsTheDevice"}),
               program_options({{"E2E_REQUIREMENTS", "kind=a"},
                                {"E2E_RELEASE_FILE", (dir() / "never").string()},
                                {"E2E_OWN_SIGTERM", "1"}},
                               output_file()));
  holder.wait_for_output("suite HeldSuite: locked dev-a1");
  holder.send_signal(SIGTERM);
  EXPECT_EQ(holder.wait(), 7) << holder.output();
  EXPECT_NE(holder.output().find("own SIGTERM handler"), std::string::npos) << holder.output();
  EXPECT_EQ(holder.output().find("lockable: SIGTERM"), std::string::npos) << holder.output();
}

// ctest runs one GoogleTest test per process; with -j4 and two "p" devices, four processes
// compete. The per-test reports must show that no two held one device at overlapping times.
TEST_F(PluginE2eTest, CtestInParallelNeverSharesADevice) {
  const fs::path build = dir() / "ctest-build";
  const fs::path reports = dir() / "reports";
  const auto configure =
      run_program({CMAKE_COMMAND, "-S", CTEST_PROJECT_DIR, "-B", build.string(), "-G", "Ninja",
                   "-DPROGRAM=" FIXTURE_PROGRAM, "-DLOCKABLE_GTEST_CMAKE=" LOCKABLE_GTEST_CMAKE,
                   "-DRESOURCES=" + resources().string(), "-DLOCK_FOLDER=" + locks().string(),
                   "-DREPORT_DIR=" + reports.string()});
  ASSERT_EQ(configure.exit_code, 0) << configure.output();

  // The labels survive (CMake 3.25 would flatten them if passed through PROPERTIES).
  const auto listed = run_program({CTEST_COMMAND, "--test-dir", build.string(), "-N", "-L", "hw"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output();
  EXPECT_NE(listed.output().find("Total Tests: 8"), std::string::npos) << listed.output();

  const auto ran = run({CTEST_COMMAND, "--test-dir", build.string(), "-j4", "-L",
                        "lockable_parallel", "--output-on-failure"},
                       program_options({}, output_file()), std::chrono::seconds(60));
  ASSERT_EQ(ran.exit_code, 0) << ran.output();
  EXPECT_NE(ran.output().find("0 tests failed out of 8"), std::string::npos) << ran.output();

  struct Hold {
    long long start;
    long long end;
    std::string test;
  };
  std::map<std::string, std::vector<Hold>> by_device;
  int reports_read = 0;
  for (const auto& entry : fs::directory_iterator(reports)) {
    const auto suite = read_xml_report(entry.path()).suite("ParallelSuite");
    const long long start = parse_time_ms(suite.get("lockable_allocation_start_time"));
    by_device[suite.get("lockable_resource_id")].push_back(
        {start, start + parse_seconds_ms(suite.get("lockable_allocation_duration")),
         entry.path().filename().string()});
    ++reports_read;
  }
  EXPECT_EQ(reports_read, 8);

  // REQUIREMENTS reach the program intact through EXTRA_ARGS.
  const auto other =
      run({CTEST_COMMAND, "--test-dir", build.string(), "-L", "other", "--output-on-failure"},
          program_options({}, output_file()), std::chrono::seconds(60));
  ASSERT_EQ(other.exit_code, 0) << other.output();
  EXPECT_NE(other.output().find("0 tests failed out of 1"), std::string::npos) << other.output();
  const auto global = read_xml_report(fs::path(reports.string() + "-other") /
                                      "other.GlobalDeviceTest.ReadsTheGlobalDevice.xml");
  EXPECT_EQ(global.get("lockable_resource_id"), "dev-a1");
  EXPECT_EQ(global.get("lockable_requirements"), R"({"kind":"a"})");
  for (auto& [device, holds] : by_device) {
    EXPECT_TRUE(device == "dev-p1" || device == "dev-p2") << device;
    std::sort(holds.begin(), holds.end(),
              [](const Hold& a, const Hold& b) { return a.start < b.start; });
    for (std::size_t i = 1; i < holds.size(); ++i) {
      // Each process stamps its start just after its grant and its end just after its release,
      // so a legitimate hand-over can look a little early; a real overlap of two 250 ms holds
      // would be far larger than this slack.
      EXPECT_GE(holds[i].start + 100, holds[i - 1].end)
          << device << ": " << holds[i].test << " started while " << holds[i - 1].test
          << " held it";
    }
  }
}

}  // namespace
}  // namespace lockable::e2e

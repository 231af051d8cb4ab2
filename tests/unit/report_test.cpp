// `lockable report`'s core: readers of logs and GoogleTest reports, and the figures, from plain
// texts and values.

#include <gtest/gtest.h>

#include "core/report.hpp"
#include "core/xml_reader.hpp"

namespace lockable::metrics {
namespace {

AllocationRecord grant(const std::string& id, const std::string& alloc, double start,
                       double duration, double queue, const std::string& label = "suite") {
  AllocationRecord r;
  r.resource_id = id;
  r.alloc_id = alloc;
  r.start = start;
  r.duration = duration;
  r.end = start + duration;
  r.queue_time = queue;
  r.queued = queue > 0;
  r.label = label;
  r.requirements = R"({"os":"Android"})";
  return r;
}

AllocationRecord timeout(double end, double waited, std::vector<std::string> candidates) {
  AllocationRecord r;
  r.outcome = Outcome::kTimedOut;
  r.end = end;
  r.queue_time = waited;
  r.queued = true;
  r.candidates = std::move(candidates);
  r.label = "suite";
  r.requirements = R"({"os":"Android"})";
  return r;
}

TEST(DistributionTest, MedianOfEvenCountIsTheMeanOfTheMiddleAndP95IsTheNearestRank) {
  const auto odd = distribution_of({3, 1, 2});
  EXPECT_EQ(odd.count, 3u);
  EXPECT_DOUBLE_EQ(odd.median, 2);
  EXPECT_DOUBLE_EQ(odd.p95, 3);
  EXPECT_DOUBLE_EQ(odd.max, 3);
  EXPECT_DOUBLE_EQ(odd.sum, 6);
  EXPECT_DOUBLE_EQ(distribution_of({4, 1, 2, 3}).median, 2.5);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_DOUBLE_EQ(distribution_of(hundred).p95, 95);
  EXPECT_DOUBLE_EQ(distribution_of({}).max, 0);
}

TEST(ComputeReportTest, FiguresPerDeviceSuiteAndRequirement) {
  std::vector<AllocationRecord> records{grant("a", "1", 100, 10, 0), grant("a", "2", 110, 20, 4),
                                        grant("b", "3", 100, 5, 1, "cmd"),
                                        timeout(140, 30, {"a", "b"})};
  records[1].outcome = Outcome::kLost;
  const Report report = compute_report(records);
  EXPECT_DOUBLE_EQ(report.window_start, 100);
  EXPECT_DOUBLE_EQ(report.window_end, 140);
  ASSERT_EQ(report.devices.size(), 2u);
  const auto& a = report.devices[0];
  EXPECT_EQ(a.resource_id, "a");
  EXPECT_EQ(a.allocations, 2u);
  EXPECT_DOUBLE_EQ(a.total_hold, 30);
  EXPECT_DOUBLE_EQ(a.mean_hold, 15);
  EXPECT_DOUBLE_EQ(a.utilization, 0.75);
  EXPECT_DOUBLE_EQ(a.queue_time.median, 2);
  EXPECT_DOUBLE_EQ(a.queue_time.max, 4);
  EXPECT_EQ(a.losses, 1u);
  EXPECT_EQ(a.timeouts, 1u);
  EXPECT_EQ(report.devices[1].timeouts, 1u);
  EXPECT_DOUBLE_EQ(report.devices[1].utilization, 5.0 / 40);
  ASSERT_EQ(report.suites.size(), 2u);
  EXPECT_EQ(report.suites[1].name, "suite");
  EXPECT_EQ(report.suites[1].requests, 3u);
  EXPECT_EQ(report.suites[1].allocations, 2u);
  EXPECT_EQ(report.suites[1].waited, 2u);
  EXPECT_EQ(report.suites[1].timeouts, 1u);
  EXPECT_DOUBLE_EQ(report.suites[1].queue_time.max, 30);
  ASSERT_EQ(report.requirements.size(), 1u);
  EXPECT_EQ(report.requirements[0].requests, 4u);
  EXPECT_EQ(report.requirements[0].devices, (std::vector<std::string>{"a", "b"}));
}

TEST(ComputeReportTest, WindowClipsHoldsAndDropsWhatLiesOutside) {
  const std::vector<AllocationRecord> records{
      grant("a", "1", 100, 10, 0), grant("a", "2", 120, 10, 0), grant("a", "3", 200, 10, 0)};
  const Report report = compute_report(records, Window{105.0, 125.0});
  ASSERT_EQ(report.devices.size(), 1u);
  EXPECT_EQ(report.devices[0].allocations, 2u);
  EXPECT_DOUBLE_EQ(report.devices[0].total_hold, 10);  // 105..110 and 120..125
  EXPECT_DOUBLE_EQ(report.devices[0].utilization, 0.5);
}

TEST(ReadInputTest, AllocationLogCountsGoodLinesAndNamesCorruptAndIncompleteOnes) {
  AllocationRecord record = grant("a", "1", 1796138444.5, 2, 0.25);
  record.host = "h";
  const std::string good = to_log_line(record);
  const std::string text =
      good + "{not json\n" + R"({"outcome":"released"})" + "\n" + good + good.substr(0, 40);
  const auto input = read_input(text, "log.jsonl");
  EXPECT_EQ(input.records.size(), 2u);
  ASSERT_EQ(input.problems.size(), 3u);
  EXPECT_EQ(input.problems[0].to_string().rfind("log.jsonl:2: not a JSON object", 0), 0u)
      << input.problems[0].to_string();
  EXPECT_EQ(input.problems[1].line, 3u);
  EXPECT_NE(input.problems[1].message.find("resource_id"), std::string::npos);
  EXPECT_EQ(input.problems[2].line, 5u);
  EXPECT_NE(input.problems[2].message.find("last line is incomplete"), std::string::npos);
}

TEST(ReadInputTest, OperatorsLinesAreCountedAndNeitherRecordsNorProblems) {
  AllocationRecord record = grant("a", "1", 1796138444.5, 2, 0.25);
  record.host = "h";
  const std::string text =
      to_log_line(record) +
      metrics::admin_log_line("forced", "a", "ann@h", "stuck", "pid 4 on h", "h", 9, "etcd",
                              1796138450) +
      metrics::admin_log_line("reserved", "a", "ann@h", "rework", "", "h", 9, "etcd", 1796138451) +
      R"({"event":"exploded","resource_id":"a"})" + "\n";
  const auto input = read_input(text, "log.jsonl");
  EXPECT_EQ(input.records.size(), 1u);
  EXPECT_EQ(input.admin_events, 2u);
  ASSERT_EQ(input.problems.size(), 1u) << "an unknown event is still a problem";
  EXPECT_EQ(input.problems[0].line, 4u);
  // A log that starts with an operator's line is still read as a log.
  const auto admin_first = read_input(
      metrics::admin_log_line("unreserved", "a", "ann@h", "", "", "h", 9, "etcd", 1796138452) +
          to_log_line(record),
      "log.jsonl");
  EXPECT_EQ(admin_first.records.size(), 1u);
  EXPECT_EQ(admin_first.admin_events, 1u);
  EXPECT_TRUE(admin_first.problems.empty());
}

TEST(ReadInputTest, AGrantedLineWithAnEmptyResourceIdIsAProblemNotARecord) {
  AllocationRecord record = grant("a", "1", 1796138444.5, 2, 0.25);
  std::string line = to_log_line(record);
  const std::string id = "\"resource_id\":\"a\"";
  ASSERT_NE(line.find(id), std::string::npos) << line;
  line.replace(line.find(id), id.size(), "\"resource_id\":\"\"");
  const auto input = read_input(line, "log.jsonl");
  EXPECT_TRUE(input.records.empty());
  ASSERT_EQ(input.problems.size(), 1u);
  EXPECT_NE(input.problems[0].message.find("resource_id"), std::string::npos)
      << input.problems[0].to_string();
}

constexpr const char* kXml112 = R"xml(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="2" name="AllTests">
  <testsuite name="PhoneTest" tests="1" lockable_requirements="{&quot;os&quot;:&quot;Android&quot;}" lockable_resource_id="pixel-7-01" lockable_alloc_id="a-1" lockable_allocation_queue_time="1.500" lockable_allocation_start_time="2026-12-01T15:20:44.587Z" lockable_allocation_duration="2.250">
    <testcase name="Boots" classname="PhoneTest">
      <properties>
        <property name="lockable_resource_id" value="pixel-7-01"/>
        <property name="lockable_alloc_id" value="a-1"/>
      </properties>
    </testcase>
  </testsuite>
  <testsuite name="TwoDevices" tests="1" lockable_requirements="[...]" lockable_resource_id_1="p" lockable_alloc_id_1="b-1" lockable_requirements_1="{}" lockable_allocation_queue_time_1="0.000" lockable_allocation_start_time_1="2026-12-01T15:20:45Z" lockable_resource_id_2="s" lockable_alloc_id_2="b-2" lockable_requirements_2="{}" lockable_allocation_queue_time_2="0.000" lockable_allocation_start_time_2="2026-12-01T15:20:45Z" lockable_allocation_duration_1="1.000" lockable_allocation_duration_2="1.000" lockable_lost="suite TwoDevices lost device s while holding it (lease expired)">
  </testsuite>
</testsuites>
)xml";

TEST(ReadInputTest, GoogleTest112XmlSuitePropertiesAsAttributes) {
  const auto input = read_input(kXml112, "r.xml");
  EXPECT_TRUE(input.problems.empty()) << input.problems[0].to_string();
  ASSERT_EQ(input.records.size(), 3u);
  const auto& phone = input.records[0];
  EXPECT_EQ(phone.resource_id, "pixel-7-01");
  EXPECT_EQ(phone.alloc_id, "a-1");
  EXPECT_EQ(phone.label, "PhoneTest");
  EXPECT_EQ(phone.requirements, R"({"os":"Android"})");
  EXPECT_DOUBLE_EQ(phone.queue_time, 1.5);
  EXPECT_TRUE(phone.queued);
  EXPECT_DOUBLE_EQ(*phone.start, 1796138444.587);
  EXPECT_DOUBLE_EQ(*phone.duration, 2.25);
  EXPECT_EQ(phone.source, "r.xml:3");
  EXPECT_EQ(input.records[1].outcome, Outcome::kReleased);
  EXPECT_EQ(input.records[2].resource_id, "s");
  EXPECT_EQ(input.records[2].outcome, Outcome::kLost);
}

TEST(ReadInputTest, GoogleTest116XmlSuitePropertiesAsElementsAndPerTestOnly) {
  const auto input = read_input(R"xml(<testsuites name="AllTests">
  <testsuite name="New">
    <properties>
      <property name="lockable_resource_id" value="d1"/>
      <property name="lockable_alloc_id" value="x"/>
      <property name="lockable_allocation_queue_time" value="0.000"/>
      <property name="lockable_allocation_start_time" value="2026-12-01T15:20:44.000Z"/>
      <property name="lockable_allocation_duration" value="3.000"/>
    </properties>
    <testcase name="t"/>
  </testsuite>
  <testsuite name="TestsOnly">
    <testcase name="t1"><properties>
      <property name="lockable_resource_id" value="d2"/><property name="lockable_alloc_id" value="y"/>
      <property name="lockable_allocation_queue_time" value="0.250"/>
      <property name="lockable_allocation_start_time" value="2026-12-01T15:20:44.000Z"/>
    </properties></testcase>
    <testcase name="t2"><properties>
      <property name="lockable_resource_id" value="d2"/><property name="lockable_alloc_id" value="y"/>
      <property name="lockable_allocation_queue_time" value="0.250"/>
      <property name="lockable_allocation_start_time" value="2026-12-01T15:20:44.000Z"/>
    </properties></testcase>
  </testsuite>
</testsuites>)xml",
                                "new.xml");
  EXPECT_TRUE(input.problems.empty());
  ASSERT_EQ(input.records.size(), 2u);
  EXPECT_DOUBLE_EQ(*input.records[0].duration, 3);
  EXPECT_EQ(input.records[1].label, "TestsOnly");
  EXPECT_EQ(input.records[1].alloc_id, "y");
  EXPECT_FALSE(input.records[1].duration);
}

TEST(ReadInputTest, ByteOrderMarkIsSkipped) {
  const auto input = read_input(std::string("\xEF\xBB\xBF") + kXml112, "bom.xml");
  EXPECT_TRUE(input.problems.empty());
  EXPECT_EQ(input.records.size(), 3u);
}

TEST(ComputeReportTest, EmptyWindowKeepsItsLimits) {
  const Report report = compute_report({grant("a", "1", 100, 10, 0)}, Window{500.0, 600.0});
  EXPECT_TRUE(report.devices.empty());
  EXPECT_DOUBLE_EQ(report.window_start, 500);
  EXPECT_DOUBLE_EQ(report.window_end, 600);
}

TEST(ReadInputTest, GoogleTestJsonFlatKeys) {
  const auto input = read_input(R"({
  "tests": 1, "name": "AllTests",
  "testsuites": [{"name": "S", "lockable_resource_id": "d", "lockable_alloc_id": "z",
     "lockable_allocation_queue_time": "0.010", "lockable_requirements": "{\"b\":1,\"a\":2}",
     "lockable_allocation_start_time": "2026-12-01T15:20:44.000Z",
     "lockable_allocation_duration": "0.500", "testsuite": [{"name": "t"}]}]
})",
                                "r.json");
  EXPECT_TRUE(input.problems.empty());
  ASSERT_EQ(input.records.size(), 1u);
  EXPECT_EQ(input.records[0].requirements, R"({"a":2,"b":1})") << "keys sorted, as in logs";
  EXPECT_DOUBLE_EQ(*input.records[0].duration, 0.5);
}

TEST(ReadInputTest, BadInputsAreProblemsWithFileAndLine) {
  struct Case {
    const char* text;
    std::size_t line;
    const char* words;
  };
  for (const Case& c : std::vector<Case>{
           {"<html>\n<body/></html>", 1, "not a GoogleTest report"},
           {"<testsuites>\n<testsuite name=\"x\"/>\n</testsuites>", 1, "without any lockable_"},
           {"<testsuites>\n<testsuite name=\"x\" lockable_alloc_id=\"a\">\n", 3, "not well-formed"},
           {"<testsuites>\n<a></b></testsuites>", 2, "does not match"},
           {"<!DOCTYPE x [<!ENTITY e \"e\">]><testsuites/>", 1, "DOCTYPE"},
           {"{\"name\": 1}", 1, "not a GoogleTest JSON report"},
           {"{\n  \"testsuites\": [\n", 3, "not valid JSON"},
           {"hello", 1, "neither XML nor JSON"},
       }) {
    const auto input = read_input(c.text, "in");
    ASSERT_EQ(input.problems.size(), 1u) << c.text;
    EXPECT_EQ(input.problems[0].line, c.line) << c.text << "\n" << input.problems[0].to_string();
    EXPECT_NE(input.problems[0].message.find(c.words), std::string::npos)
        << input.problems[0].to_string();
  }
}

TEST(MergeRecordsTest, OneAllocationInALogAndAReportIsCountedOnceWithTheSuiteName) {
  auto from_log = grant("a", "1", 100.000123, 2.000456, 0.5, "sample_suite");
  auto from_report = grant("a", "1", 100, 2, 0.5, "PhoneTest");
  from_report.from_report = true;
  const auto merged = merge_records({from_report, from_log, grant("b", "2", 100, 1, 0)});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].label, "PhoneTest");
  EXPECT_DOUBLE_EQ(*merged[0].duration, 2.000456);
}

TEST(FormatTest, OpenMetricsCsvAndJsonCarryTheFigures) {
  const Report report = compute_report({grant("dut \"1\"", "1", 100, 10, 2)});
  const std::string om = format_openmetrics(report);
  EXPECT_NE(om.find("lockable_device_allocations_total{resource_id=\"dut \\\"1\\\"\"} 1\n"),
            std::string::npos)
      << om;
  EXPECT_NE(om.find("quantile=\"0.95\"} 2\n"), std::string::npos) << om;
  EXPECT_EQ(om.substr(om.size() - 6), "# EOF\n");
  const std::string csv = format_csv(report);
  EXPECT_NE(csv.find("device,\"dut \"\"1\"\"\",1,,,10.000000,10.000000,1.000000,2.000000"),
            std::string::npos)
      << csv;
  const Json json = Json::parse(format_json(report, {{"f", 3, "bad"}}));
  EXPECT_EQ(json["devices"][0]["resource_id"], "dut \"1\"");
  EXPECT_EQ(json["devices"][0]["allocations"], 1);
  EXPECT_EQ(json["problems"][0]["line"], 3);
}

}  // namespace
}  // namespace lockable::metrics

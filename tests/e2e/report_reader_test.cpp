// The report reader used by the end-to-end checks: both XML property forms, JSON, times.
#include "report_reader.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace lockable::e2e {
namespace {

// GoogleTest <= 1.15: suite and global properties as attributes.
constexpr const char* kAttributeForm = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1" failures="0" time="0.2" timestamp="2026-01-02T03:04:05.678" name="AllTests" lockable_resource_id="dev-g">
  <testsuite name="S" tests="1" time="0.1" lockable_resource_id="dev-1" lockable_requirements="{&quot;os&quot;:&quot;Android&quot;}">
    <testcase name="T" status="run" result="skipped" classname="S">
      <skipped message="x.cpp:1&#x0A;no device"><![CDATA[x.cpp:1
no <device>]]></skipped>
    </testcase>
  </testsuite>
</testsuites>
)";

// GoogleTest >= 1.16: <properties> children of <testsuites> and <testsuite>.
constexpr const char* kElementForm = R"(<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="1" name="AllTests">
  <properties>
    <property name="lockable_resource_id" value="dev-g"/>
  </properties>
  <testsuite name="S" tests="1">
    <properties>
      <property name="lockable_resource_id" value="dev-1"/>
      <property name="lockable_requirements" value="{&quot;os&quot;:&quot;Android&quot;}"/>
    </properties>
    <testcase name="T" status="run" result="completed" classname="S">
      <properties>
        <property name="lockable_resource_id" value="dev-1"/>
      </properties>
      <failure message="boom &amp; more" type=""><![CDATA[boom]]></failure>
    </testcase>
  </testsuite>
</testsuites>
)";

TEST(ReportReaderTest, ReadsSuitePropertiesInBothXmlForms) {
  for (const char* text : {kAttributeForm, kElementForm}) {
    const Report report = parse_xml_report(text);
    EXPECT_EQ(report.get("lockable_resource_id"), "dev-g");
    const auto& suite = report.suite("S");
    EXPECT_EQ(suite.get("lockable_resource_id"), "dev-1");
    EXPECT_EQ(suite.get("lockable_requirements"), R"({"os":"Android"})");
    ASSERT_EQ(suite.tests.size(), 1u);
  }
}

TEST(ReportReaderTest, ReadsTestResultsAndMessages) {
  const auto skipped = parse_xml_report(kAttributeForm).suite("S").tests.at(0);
  EXPECT_EQ(skipped.result, "skipped");
  EXPECT_FALSE(skipped.failed);
  EXPECT_EQ(skipped.message, "x.cpp:1\nno device\n");
  const auto failed = parse_xml_report(kElementForm).suite("S").tests.at(0);
  EXPECT_TRUE(failed.failed);
  EXPECT_EQ(failed.message, "boom & more\n");
  // Test properties come from <property> children only, never from <testcase> attributes.
  EXPECT_EQ(failed.get("lockable_resource_id"), "dev-1");
  EXPECT_FALSE(skipped.has("lockable_resource_id"));
  EXPECT_FALSE(failed.has("classname"));
}

TEST(ReportReaderTest, RejectsMalformedXml) {
  // What GoogleTest 1.12.1 writes for a property key with spaces: no XML parser accepts it.
  EXPECT_THROW(parse_xml(R"(<testsuite lockable queue="1"/>)"), std::runtime_error);
  EXPECT_THROW(parse_xml("<a><b></a>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<a x=\"1\">"), std::runtime_error);
  EXPECT_THROW(parse_xml("<a x=\"&bogus;\"/>"), std::runtime_error);
}

TEST(ReportReaderTest, ReadsJsonFlatKeys) {
  const Report report = parse_json_report(R"({"tests": 1, "name": "AllTests",
    "lockable_resource_id": "dev-g",
    "testsuites": [{"name": "S", "tests": 1, "time": "0.1s", "lockable_resource_id": "dev-1",
      "testsuite": [{"name": "T", "result": "SKIPPED"},
                    {"name": "U", "result": "COMPLETED", "failures": [{"failure": "boom"}]}]}]})");
  EXPECT_EQ(report.get("lockable_resource_id"), "dev-g");
  EXPECT_EQ(report.get("tests"), "1");
  const auto& suite = report.suite("S");
  EXPECT_EQ(suite.get("lockable_resource_id"), "dev-1");
  EXPECT_EQ(suite.tests.at(0).result, "skipped");
  EXPECT_TRUE(suite.tests.at(1).failed);
  EXPECT_THROW(report.suite("Missing"), std::runtime_error);
}

TEST(ReportReaderTest, ParsesTimesAndSeconds) {
  EXPECT_EQ(parse_time_ms("1970-01-01T00:00:01.250Z"), 1250);
  EXPECT_EQ(parse_time_ms("2026-11-22T10:00:00Z"), 1795341600000LL);
  EXPECT_EQ(parse_seconds_ms("0.012"), 12);
  EXPECT_EQ(parse_seconds_ms("1.5s"), 1500);
  EXPECT_THROW(parse_seconds_ms("soon"), std::runtime_error);
  EXPECT_THROW(parse_time_ms("yesterday"), std::runtime_error);
}

}  // namespace
}  // namespace lockable::e2e

#pragma once

// Reads GoogleTest XML and JSON reports into one shape, so tests can assert the plugin's
// properties whatever the report format and GoogleTest version.

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace lockable::e2e {

/// One XML element; text and CDATA are dropped (the reports keep everything we check in
/// attributes).
struct XmlElement {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::vector<XmlElement> children;

  /// The attribute's decoded value, or "" when absent.
  std::string attribute(const std::string& key) const;
  bool has_attribute(const std::string& key) const;
};

/// Parses a whole document (prolog, comments, CDATA allowed). Throws std::runtime_error on
/// malformed XML, including attribute names no XML parser accepts (1.12.1 writes property keys
/// unescaped).
XmlElement parse_xml(const std::string& text);

struct TestCaseReport {
  std::string name;
  /// "completed", "skipped" (lower case, whatever the format).
  std::string result;
  bool failed = false;
  /// Failure and skip messages, joined.
  std::string message;
  /// XML: only the <properties><property name= value=/> children of <testcase> (what JUnit
  /// readers show), not its attributes. JSON: every string/number key of the test object.
  std::map<std::string, std::string> properties;

  /// The property or "" when absent.
  std::string get(const std::string& key) const;
  bool has(const std::string& key) const { return properties.count(key) != 0; }
};

struct SuiteReport {
  std::string name;
  /// Every attribute of <testsuite> (or string/number key of the JSON suite object) plus every
  /// <properties><property name= value=/> child: the attribute form of GoogleTest <= 1.15 and
  /// the element form of 1.16+ both land here.
  std::map<std::string, std::string> properties;
  std::vector<TestCaseReport> tests;

  /// The property or "" when absent.
  std::string get(const std::string& key) const;
  bool has(const std::string& key) const { return properties.count(key) != 0; }
};

struct Report {
  /// Top-level (<testsuites>) attributes and properties.
  std::map<std::string, std::string> properties;
  std::vector<SuiteReport> suites;

  std::string get(const std::string& key) const;
  bool has(const std::string& key) const { return properties.count(key) != 0; }
  /// The suite named `name`; throws std::runtime_error listing the suites when absent.
  const SuiteReport& suite(const std::string& name) const;
};

Report read_xml_report(const std::filesystem::path& path);
Report parse_xml_report(const std::string& text);
Report read_json_report(const std::filesystem::path& path);
Report parse_json_report(const std::string& text);

/// Milliseconds since the epoch of an ISO 8601 time: `2026-11-22T10:00:00.123Z` (UTC) or, without
/// a zone, local time (as GoogleTest's XML `timestamp`). Throws std::runtime_error.
long long parse_time_ms(const std::string& text);

/// Milliseconds of "0.012" or "0.012s" (GoogleTest JSON). Throws std::runtime_error.
long long parse_seconds_ms(const std::string& text);

}  // namespace lockable::e2e

// Readers of `lockable report`'s inputs: allocation logs, GoogleTest XML and JSON reports.

#include "core/report.hpp"
#include "core/xml_reader.hpp"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>

namespace lockable::metrics {
namespace {

constexpr const char* kWhatToGive =
    "give GoogleTest XML or JSON reports (--gtest_output=xml:FILE or json:FILE) of suites built "
    "with lockable::gtest, or allocation logs (--metrics-file, LOCKABLE_METRICS_FILE)";

std::size_t line_of_byte(std::string_view text, std::size_t byte) {
  byte = std::min(byte, text.size());
  return static_cast<std::size_t>(std::count(text.begin(), text.begin() + byte, '\n')) + 1;
}

std::string canonical_requirements(const std::string& text) {
  const Json json = Json::parse(text, nullptr, false);
  if (json.is_discarded()) return text;
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// The `lockable_*` properties of one report element, by device index (0 for unnumbered names).
struct Properties {
  std::map<std::size_t, std::map<std::string, std::string>> by_device;
  std::string lost;
  std::string error;
  bool any = false;

  // `lockable_resource_id`, `lockable_resource_id_2`, `lockable_global_alloc_id`, ...
  void add(std::string_view key, std::string value) {
    constexpr std::string_view kPrefix = "lockable_";
    constexpr std::string_view kGlobal = "global_";
    if (key.substr(0, kPrefix.size()) != kPrefix) return;
    key.remove_prefix(kPrefix.size());
    if (key.substr(0, kGlobal.size()) == kGlobal) key.remove_prefix(kGlobal.size());
    any = true;
    if (key == "lost") {
      lost = std::move(value);
      return;
    }
    if (key == "error") {
      error = std::move(value);
      return;
    }
    std::size_t index = 0;
    const auto underscore = key.rfind('_');
    if (underscore != std::string_view::npos && underscore + 1 < key.size() &&
        std::all_of(key.begin() + static_cast<std::ptrdiff_t>(underscore) + 1, key.end(),
                    [](char c) { return c >= '0' && c <= '9'; })) {
      index = static_cast<std::size_t>(std::atol(std::string(key.substr(underscore + 1)).c_str()));
      key = key.substr(0, underscore);
    }
    by_device[index][std::string(key)] = std::move(value);
  }

  std::size_t devices() const {
    std::size_t count = 0;
    for (const auto& [index, values] : by_device) count += values.count("alloc_id");
    return count;
  }

  bool has_devices() const {
    for (const auto& [index, values] : by_device) {
      if (values.count("alloc_id") != 0) return true;
    }
    return false;
  }
};

double seconds_value(const std::string& text, const char* name) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(value >= 0)) {
    throw std::invalid_argument(std::string("lockable_") + name +
                                " must be seconds such as 0.012, found \"" + text + "\"");
  }
  return value;
}

// The records of one element's properties; `label` names the suite.
void add_records(const Properties& properties, const std::string& label, const std::string& file,
                 std::size_t line, ParsedInput& out) {
  for (const auto& entry : properties.by_device) {
    // Not a structured binding: C++17 lambdas cannot capture those (clang refuses).
    const auto& values = entry.second;
    const auto value = [&](const char* name) -> std::string {
      const auto it = values.find(name);
      return it == values.end() ? std::string() : it->second;
    };
    if (value("alloc_id").empty()) continue;  // the unnumbered requirements of a multi-device suite
    try {
      AllocationRecord record;
      record.from_report = true;
      record.resource_id = value("resource_id");
      if (record.resource_id.empty()) throw std::invalid_argument("lockable_resource_id missing");
      record.alloc_id = value("alloc_id");
      record.requirements = canonical_requirements(value("requirements"));
      record.label = label;
      record.queue_time = seconds_value(value("allocation_queue_time"), "allocation_queue_time");
      record.queued = record.queue_time > 0;
      const auto start = parse_timestamp(value("allocation_start_time"));
      if (!start) {
        throw std::invalid_argument(
            "lockable_allocation_start_time must be an ISO 8601 time, "
            "found \"" +
            value("allocation_start_time") + "\"");
      }
      record.start = *start;
      record.requested = *start - record.queue_time;
      if (!value("allocation_duration").empty()) {
        record.duration = seconds_value(value("allocation_duration"), "allocation_duration");
        record.end = *record.start + *record.duration;
      }
      // The plugin writes "<who> lost device <id> while holding it (<why>)".
      if (!properties.lost.empty() &&
          (properties.devices() == 1 ||
           properties.lost.find("lost device " + record.resource_id + " ") != std::string::npos)) {
        record.outcome = Outcome::kLost;
        record.reason = properties.lost;
      }
      record.source = file + ":" + std::to_string(line);
      out.records.push_back(std::move(record));
    } catch (const std::invalid_argument& error) {
      out.problems.push_back({file, line, label + ": " + error.what() + "; not counted"});
    }
  }
}

// Keeps the records of a suite's tests only where the suite itself has none (per-test
// properties carry no duration), once per alloc id.
void add_suite(const Properties& suite, const std::vector<Properties>& tests,
               const std::string& label, const std::string& file, std::size_t line,
               ParsedInput& out) {
  if (suite.has_devices()) {
    add_records(suite, label, file, line, out);
    return;
  }
  std::set<std::string> seen;
  for (const auto& test : tests) {
    Properties fresh;
    for (const auto& [index, values] : test.by_device) {
      const auto it = values.find("alloc_id");
      if (it == values.end() || !seen.insert(it->second).second) continue;
      fresh.by_device[index] = values;
    }
    fresh.lost = suite.lost;
    add_records(fresh, label, file, line, out);
  }
}

class GtestXmlHandler : public xml::Handler {
 public:
  GtestXmlHandler(std::string file, ParsedInput& out) : file_(std::move(file)), out_(out) {}

  void start_element(std::string_view name, const xml::Attributes& attributes,
                     std::size_t line) override {
    if (depth_++ == 0) {
      root_ = std::string(name);
      root_line_ = line;
      if (name != "testsuites" && name != "testsuite") {
        throw xml::XmlError(line, "not a GoogleTest report: the root element is <" +
                                      std::string(name) + ">, not <testsuites>; " + kWhatToGive);
      }
    }
    if (name == "testsuites" || name == "testsuite" || name == "testcase") {
      Element element;
      element.kind = std::string(name);
      element.line = line;
      for (const auto& [key, value] : attributes) {
        if (key == "name") element.name = value;
        element.properties.add(key, value);
      }
      stack_.push_back(std::move(element));
    } else if (name == "property" && !stack_.empty()) {
      std::string key, value;
      for (const auto& [k, v] : attributes) {
        if (k == "name") key = v;
        if (k == "value") value = v;
      }
      stack_.back().properties.add(key, value);
    }
  }

  void end_element(std::string_view name) override {
    --depth_;
    if (name != "testsuites" && name != "testsuite" && name != "testcase") return;
    Element element = std::move(stack_.back());
    stack_.pop_back();
    any_ = any_ || element.properties.any;
    if (name == "testcase") {
      if (!stack_.empty()) stack_.back().tests.push_back(std::move(element.properties));
      return;
    }
    const std::string label = name == "testsuites" ? "(whole program)" : element.name;
    add_suite(element.properties, element.tests, label, file_, element.line, out_);
  }

  bool any_lockable_property() const { return any_; }
  std::size_t root_line() const { return root_line_; }

 private:
  struct Element {
    std::string kind;
    std::string name;
    std::size_t line = 0;
    Properties properties;
    std::vector<Properties> tests;
  };
  std::string file_;
  ParsedInput& out_;
  std::vector<Element> stack_;
  std::size_t depth_ = 0;
  std::string root_;
  std::size_t root_line_ = 1;
  bool any_ = false;
};

void add_json_properties(const Json& object, Properties& properties) {
  for (const auto& [key, value] : object.items()) {
    if (value.is_string()) properties.add(key, value.get<std::string>());
  }
}

}  // namespace

std::string InputProblem::to_string() const {
  return file + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": " + message;
}

ParsedInput read_allocation_log(std::string_view text, const std::string& file) {
  ParsedInput out;
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    ++line_number;
    const std::size_t newline = text.find('\n', pos);
    const bool last_unterminated = newline == std::string_view::npos;
    const std::string_view line =
        text.substr(pos, last_unterminated ? std::string_view::npos : newline - pos);
    pos = last_unterminated ? text.size() : newline + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const Json json = Json::parse(line, nullptr, false);
    if (json.is_discarded()) {
      out.problems.push_back(
          {file, line_number,
           last_unterminated
               ? "the last line is incomplete (its writer was killed, or is still writing); "
                 "not counted"
               : "not a JSON object (a corrupt line); not counted"});
      continue;
    }
    if (metrics::is_admin_line(json)) {
      ++out.admin_events;
      continue;
    }
    try {
      AllocationRecord record = record_from_json(json);
      record.source = file + ":" + std::to_string(line_number);
      out.records.push_back(std::move(record));
    } catch (const std::invalid_argument& error) {
      out.problems.push_back({file, line_number, std::string(error.what()) + "; not counted"});
    }
  }
  return out;
}

ParsedInput read_gtest_xml(std::string_view text, const std::string& file) {
  ParsedInput out;
  GtestXmlHandler handler(file, out);
  try {
    xml::parse(text, handler);
  } catch (const xml::XmlError& error) {
    const bool foreign = std::string_view(error.what()).rfind("not a GoogleTest", 0) == 0;
    out.problems.push_back({file, error.line(),
                            foreign ? error.what()
                                    : std::string("not well-formed XML: ") + error.what() +
                                          "; the suites before this point are counted"});
    return out;
  }
  if (!handler.any_lockable_property()) {
    out.problems.push_back({file, handler.root_line(),
                            "a GoogleTest report without any lockable_* property (its suites "
                            "locked no device); " +
                                std::string(kWhatToGive)});
  }
  return out;
}

ParsedInput read_gtest_json(std::string_view text, const std::string& file) {
  ParsedInput out;
  Json json;
  try {
    json = Json::parse(text);
  } catch (const Json::parse_error& error) {
    out.problems.push_back({file, line_of_byte(text, error.byte),
                            std::string("not valid JSON (truncated?): ") + error.what()});
    return out;
  }
  const auto suites = json.is_object() ? json.find("testsuites") : json.end();
  if (!json.is_object() || suites == json.end() || !suites->is_array()) {
    out.problems.push_back(
        {file, 1,
         "not a GoogleTest JSON report (no \"testsuites\" array); " + std::string(kWhatToGive)});
    return out;
  }
  bool any = false;
  std::size_t index = 0;
  for (const auto& suite : *suites) {
    if (!suite.is_object()) continue;
    Properties properties;
    add_json_properties(suite, properties);
    std::vector<Properties> tests;
    if (const auto it = suite.find("testsuite"); it != suite.end() && it->is_array()) {
      for (const auto& test : *it) {
        if (!test.is_object()) continue;
        tests.emplace_back();
        add_json_properties(test, tests.back());
        any = any || tests.back().any;
      }
    }
    any = any || properties.any;
    const std::string name = suite.value("name", "testsuites[" + std::to_string(index) + "]");
    add_suite(properties, tests, name, file, 0, out);
    ++index;
  }
  Properties global;
  add_json_properties(json, global);
  any = any || global.any;
  add_suite(global, {}, "(whole program)", file, 0, out);
  if (!any) {
    out.problems.push_back({file, 0,
                            "a GoogleTest report without any lockable_* property (its suites "
                            "locked no device); " +
                                std::string(kWhatToGive)});
  }
  return out;
}

ParsedInput read_input(std::string_view text, const std::string& file) {
  // A byte order mark, as editors on Windows write it.
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  const std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) {
    return {{}, {{file, 0, "empty; " + std::string(kWhatToGive)}}};
  }
  if (text[first] == '<') return read_gtest_xml(text, file);
  if (text[first] != '{' && text[first] != '[') {
    return {{}, {{file, 1, "neither XML nor JSON; " + std::string(kWhatToGive)}}};
  }
  // A log's first line is a whole object; a GoogleTest JSON report's first line is "{".
  const std::size_t newline = text.find('\n', first);
  const std::string_view first_line = text.substr(
      first, newline == std::string_view::npos ? std::string_view::npos : newline - first);
  const Json head = Json::parse(first_line, nullptr, false);
  if (!head.is_discarded() && head.is_object() &&
      (head.contains("outcome") || is_admin_line(head))) {
    return read_allocation_log(text, file);
  }
  if (first_line.find_first_not_of(" \t\r{[") == std::string_view::npos) {
    return read_gtest_json(text, file);
  }
  if (head.is_discarded()) return read_allocation_log(text, file);  // a log with a torn head
  return read_gtest_json(text, file);
}

std::vector<AllocationRecord> merge_records(std::vector<AllocationRecord> records) {
  std::vector<AllocationRecord> merged;
  merged.reserve(records.size());
  std::unordered_map<std::string, std::size_t> by_alloc;
  by_alloc.reserve(records.size());
  for (auto& record : records) {
    if (record.alloc_id.empty()) {
      merged.push_back(std::move(record));
      continue;
    }
    const auto [it, fresh] = by_alloc.emplace(record.alloc_id, merged.size());
    if (fresh) {
      merged.push_back(std::move(record));
      continue;
    }
    AllocationRecord& kept = merged[it->second];
    if (kept.from_report && !record.from_report) {
      std::string suite = std::move(kept.label);
      kept = std::move(record);
      kept.label = std::move(suite);
    } else if (!kept.from_report && record.from_report) {
      kept.label = record.label;
    } else if (!kept.duration && record.duration) {
      kept = std::move(record);  // the same report twice: keep the one that knows the duration
    }
  }
  return merged;
}

}  // namespace lockable::metrics

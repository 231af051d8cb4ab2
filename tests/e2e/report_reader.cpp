#include "report_reader.hpp"

#include <nlohmann/json.hpp>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lockable::e2e {
namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read report " + path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class XmlParser {
 public:
  explicit XmlParser(const std::string& text) : text_(text) {}

  XmlElement document() {
    skip_misc();
    if (!starts_with("<")) fail("expected the root element");
    XmlElement root = element();
    skip_misc();
    if (pos_ != text_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("malformed XML at offset " + std::to_string(pos_) + ": " + what);
  }
  bool starts_with(const char* prefix) const {
    return text_.compare(pos_, std::strlen(prefix), prefix) == 0;
  }
  void skip_to(const char* end) {
    const auto at = text_.find(end, pos_);
    if (at == std::string::npos) fail(std::string("missing ") + end);
    pos_ = at + std::strlen(end);
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  // Prolog, comments, processing instructions and whitespace between elements.
  void skip_misc() {
    while (true) {
      skip_space();
      if (starts_with("<?")) {
        skip_to("?>");
      } else if (starts_with("<!--")) {
        skip_to("-->");
      } else {
        return;
      }
    }
  }
  static bool name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  }
  static bool name_char(char c) {
    return name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  }
  std::string name() {
    if (pos_ >= text_.size() || !name_start(text_[pos_])) fail("expected a name");
    const auto begin = pos_;
    while (pos_ < text_.size() && name_char(text_[pos_])) ++pos_;
    return text_.substr(begin, pos_ - begin);
  }
  std::string decode(const std::string& raw) const {
    std::string out;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      const auto semi = raw.find(';', i);
      if (semi == std::string::npos) fail("unterminated entity");
      const std::string entity = raw.substr(i + 1, semi - i - 1);
      if (entity == "lt") {
        out += '<';
      } else if (entity == "gt") {
        out += '>';
      } else if (entity == "amp") {
        out += '&';
      } else if (entity == "quot") {
        out += '"';
      } else if (entity == "apos") {
        out += '\'';
      } else if (!entity.empty() && entity[0] == '#') {
        const bool hex = entity.size() > 1 && (entity[1] == 'x' || entity[1] == 'X');
        const unsigned long code =
            std::strtoul(entity.c_str() + (hex ? 2 : 1), nullptr, hex ? 16 : 10);
        if (code < 0x80) {
          out += static_cast<char>(code);
        } else if (code < 0x800) {
          out += static_cast<char>(0xC0 | (code >> 6));
          out += static_cast<char>(0x80 | (code & 0x3F));
        } else {
          out += static_cast<char>(0xE0 | (code >> 12));
          out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
          out += static_cast<char>(0x80 | (code & 0x3F));
        }
      } else {
        fail("unknown entity &" + entity + ";");
      }
      i = semi;
    }
    return out;
  }
  XmlElement element() {
    ++pos_;  // '<'
    XmlElement element;
    element.name = name();
    while (true) {
      skip_space();
      if (starts_with("/>")) {
        pos_ += 2;
        return element;
      }
      if (starts_with(">")) {
        ++pos_;
        break;
      }
      std::string key = name();
      skip_space();
      if (!starts_with("=")) fail("expected = after attribute " + key);
      ++pos_;
      skip_space();
      if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
        fail("expected a quoted value for attribute " + key);
      }
      const char quote = text_[pos_++];
      const auto end = text_.find(quote, pos_);
      if (end == std::string::npos) fail("unterminated value of attribute " + key);
      const std::string raw = text_.substr(pos_, end - pos_);
      if (raw.find('<') != std::string::npos) fail("'<' in the value of attribute " + key);
      element.attributes.emplace_back(std::move(key), decode(raw));
      pos_ = end + 1;
    }
    while (true) {
      if (pos_ >= text_.size()) fail("unclosed element " + element.name);
      if (starts_with("</")) {
        pos_ += 2;
        const std::string closing = name();
        if (closing != element.name) fail("</" + closing + "> closes <" + element.name + ">");
        skip_space();
        if (!starts_with(">")) fail("expected >");
        ++pos_;
        return element;
      }
      if (starts_with("<![CDATA[")) {
        skip_to("]]>");
      } else if (starts_with("<!--")) {
        skip_to("-->");
      } else if (starts_with("<?")) {
        skip_to("?>");
      } else if (starts_with("<")) {
        element.children.push_back(this->element());
      } else {
        const auto next = text_.find('<', pos_);
        pos_ = next == std::string::npos ? text_.size() : next;
      }
    }
  }

  const std::string& text_;
  std::size_t pos_ = 0;
};

// Attributes plus <properties><property name= value=/></properties> children.
std::map<std::string, std::string> properties_of(const XmlElement& element) {
  std::map<std::string, std::string> properties;
  for (const auto& [key, value] : element.attributes) properties[key] = value;
  for (const auto& child : element.children) {
    if (child.name != "properties") continue;
    for (const auto& property : child.children) {
      if (property.name == "property") {
        properties[property.attribute("name")] = property.attribute("value");
      }
    }
  }
  return properties;
}

std::string lower(std::string text) {
  for (auto& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::map<std::string, std::string> scalar_keys(const nlohmann::json& object) {
  std::map<std::string, std::string> properties;
  for (const auto& [key, value] : object.items()) {
    if (value.is_string()) {
      properties[key] = value.get<std::string>();
    } else if (value.is_number() || value.is_boolean()) {
      properties[key] = value.dump();
    }
  }
  return properties;
}

}  // namespace

std::string XmlElement::attribute(const std::string& key) const {
  for (const auto& [k, v] : attributes) {
    if (k == key) return v;
  }
  return "";
}

bool XmlElement::has_attribute(const std::string& key) const {
  for (const auto& attribute : attributes) {
    if (attribute.first == key) return true;
  }
  return false;
}

XmlElement parse_xml(const std::string& text) { return XmlParser(text).document(); }

std::string TestCaseReport::get(const std::string& key) const {
  const auto it = properties.find(key);
  return it == properties.end() ? "" : it->second;
}

std::string SuiteReport::get(const std::string& key) const {
  const auto it = properties.find(key);
  return it == properties.end() ? "" : it->second;
}

std::string Report::get(const std::string& key) const {
  const auto it = properties.find(key);
  return it == properties.end() ? "" : it->second;
}

const SuiteReport& Report::suite(const std::string& name) const {
  std::string names;
  for (const auto& suite : suites) {
    if (suite.name == name) return suite;
    names += " " + suite.name;
  }
  throw std::runtime_error("no suite " + name + " in the report; it has:" + names);
}

Report parse_xml_report(const std::string& text) {
  const XmlElement root = parse_xml(text);
  if (root.name != "testsuites") throw std::runtime_error("XML report root is <" + root.name + ">");
  Report report;
  report.properties = properties_of(root);
  for (const auto& suite_element : root.children) {
    if (suite_element.name != "testsuite") continue;
    SuiteReport suite;
    suite.name = suite_element.attribute("name");
    suite.properties = properties_of(suite_element);
    for (const auto& test_element : suite_element.children) {
      if (test_element.name != "testcase") continue;
      TestCaseReport test;
      test.name = test_element.attribute("name");
      test.result = lower(test_element.attribute("result"));
      for (const auto& child : test_element.children) {
        if (child.name == "failure") {
          test.failed = true;
          test.message += child.attribute("message") + "\n";
        } else if (child.name == "skipped") {
          test.result = "skipped";
          test.message += child.attribute("message") + "\n";
        } else if (child.name == "properties") {
          for (const auto& property : child.children) {
            if (property.name == "property") {
              test.properties[property.attribute("name")] = property.attribute("value");
            }
          }
        }
      }
      suite.tests.push_back(std::move(test));
    }
    report.suites.push_back(std::move(suite));
  }
  return report;
}

Report read_xml_report(const std::filesystem::path& path) {
  try {
    return parse_xml_report(read_file(path));
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

Report parse_json_report(const std::string& text) {
  const auto root = nlohmann::json::parse(text);
  Report report;
  report.properties = scalar_keys(root);
  for (const auto& suite_object : root.value("testsuites", nlohmann::json::array())) {
    SuiteReport suite;
    suite.name = suite_object.value("name", "");
    suite.properties = scalar_keys(suite_object);
    for (const auto& test_object : suite_object.value("testsuite", nlohmann::json::array())) {
      TestCaseReport test;
      test.name = test_object.value("name", "");
      test.result = lower(test_object.value("result", ""));
      test.properties = scalar_keys(test_object);
      for (const auto& failure : test_object.value("failures", nlohmann::json::array())) {
        test.failed = true;
        test.message += failure.value("failure", "") + "\n";
      }
      suite.tests.push_back(std::move(test));
    }
    report.suites.push_back(std::move(suite));
  }
  return report;
}

Report read_json_report(const std::filesystem::path& path) {
  try {
    return parse_json_report(read_file(path));
  } catch (const std::exception& e) {
    throw std::runtime_error(path.string() + ": " + e.what());
  }
}

long long parse_time_ms(const std::string& text) {
  std::tm tm{};
  int year = 0;
  int month = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    throw std::runtime_error("not an ISO 8601 time: \"" + text + "\"");
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  std::string rest = text.substr(static_cast<std::size_t>(consumed));
  long long millis = 0;
  if (!rest.empty() && rest[0] == '.') {
    std::size_t digits = 1;
    std::string fraction;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) {
      fraction += rest[digits++];
    }
    fraction = (fraction + "000").substr(0, 3);
    millis = std::stoll(fraction);
    rest = rest.substr(digits);
  }
  std::time_t seconds = 0;
  if (rest == "Z" || rest == "+00:00") {
    seconds = timegm(&tm);
  } else if (rest.empty()) {
    tm.tm_isdst = -1;
    seconds = std::mktime(&tm);
  } else {
    throw std::runtime_error("unsupported time zone in \"" + text + "\"");
  }
  return static_cast<long long>(seconds) * 1000 + millis;
}

long long parse_seconds_ms(const std::string& text) {
  std::string number = text;
  if (!number.empty() && number.back() == 's') number.pop_back();
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size()) {
    throw std::runtime_error("not a number of seconds: \"" + text + "\"");
  }
  return std::llround(value * 1000.0);
}

}  // namespace lockable::e2e

// Validation of resources.json: every problem of a source reported together, each naming the
// source, the entry and the fix.
#include <lockable/error.hpp>
#include <lockable/resource.hpp>

#include <gtest/gtest.h>

#include <clocale>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/resources_text.hpp"
#include "lockable/test/case_name.hpp"
#include "lockable/test/files.hpp"

namespace lockable {
namespace {

using test::CaseName;

std::string read_sample(const std::string& relative) {
  return test::read_text(std::filesystem::path(LOCKABLE_SOURCE_DIR) / relative);
}

// The problems of `text` as printed to users, or a note that it parsed.
std::vector<std::string> problems_of(const std::string& text,
                                     const std::string& source = "r.json") {
  try {
    parse_resources_text(text, source);
  } catch (const ResourcesError& e) {
    EXPECT_EQ(e.source(), source);
    std::vector<std::string> lines;
    for (const auto& problem : e.problems()) lines.push_back(problem.to_string());
    return lines;
  }
  return {"(valid)"};
}

// ---------------------------------------------------------------------------------------------
// The broken samples shipped in sample_resources/broken

TEST(SampleResources, BadFieldsReportsEveryProblemTogether) {
  const std::string source = "sample_resources/broken/bad_fields.json";
  const std::string where = source + ": entry ";
  EXPECT_EQ(
      problems_of(read_sample(source), source),
      (std::vector<std::string>{
          where + R"(1 (id "dut-2"): "online" must be true or false, found "yes")",
          where + R"(2 (id "dut-1"): duplicate id, also used by entry 0; give every resource a )"
                  R"(unique "id")",
          where + R"(3: missing "id"; give every resource a unique string "id")",
          where + R"(4 (id "../etc/passwd"): "id" contains "/"; the id becomes a lock file name, )"
                  R"(so use letters, digits, "-", "_" and "." (not first), at most 200 bytes)",
          where + R"(5 (id "dut-6"): "hostname" must be a string (the host the device is )"
                  R"(attached to), found 42)",
          where + R"(6: must be a resource object like {"id": "dut-1", "online": true}, found a )"
                  R"(string "dut-7")",
      }));
}

TEST(SampleResources, BadFieldsWhatListsTheProblemsOnePerLine) {
  try {
    parse_resources_text(read_sample("sample_resources/broken/bad_fields.json"), "bad.json");
    FAIL() << "no error";
  } catch (const ResourcesError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.substr(0, what.find('\n')), "bad.json: 6 problems in the resources:");
    EXPECT_EQ(e.problems()[0].where, "bad.json: entry 1 (id \"dut-2\")");
    EXPECT_EQ(e.problems()[0].message, "\"online\" must be true or false, found \"yes\"");
  }
}

TEST(SampleResources, NotAnArray) {
  const std::string source = "sample_resources/broken/not_an_array.json";
  EXPECT_EQ(
      problems_of(read_sample(source), source),
      (std::vector<std::string>{source + ": must be a JSON array of resource objects, found an "
                                         "object; wrap the objects in [ ]"}));
}

TEST(SampleResources, SyntaxErrorHasLineAndColumn) {
  const std::string source = "sample_resources/broken/syntax_error.json";
  EXPECT_EQ(
      problems_of(read_sample(source), source),
      (std::vector<std::string>{source + ":3:34: invalid JSON: syntax error while parsing object "
                                         "key - unexpected '}'; expected string literal"}));
}

TEST(SampleResources, TheMainSampleIsValid) {
  const auto resources =
      parse_resources_text(read_sample("sample_resources/resources.json"), "resources.json");
  ASSERT_FALSE(resources.empty());
  EXPECT_EQ(resources.front().id, "pixel-7-01");
  EXPECT_EQ(resources.front().attributes["usb"], (Json{{"hub", 1}, {"port", 2}}));
}

// ---------------------------------------------------------------------------------------------
// Every kind of bad input

struct BadCase {
  const char* name;
  std::string text;
  std::vector<std::string> problems;
};

std::ostream& operator<<(std::ostream& out, const BadCase& c) { return out << c.text; }

class BadResources : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadResources, AreReportedWithWhereWhatAndFix) {
  EXPECT_EQ(problems_of(GetParam().text), GetParam().problems);
}

const std::string kIdFix =
    "; the id becomes a lock file name, so use letters, digits, \"-\", \"_\" and \".\" (not "
    "first), at most 200 bytes";

const BadCase kBad[] = {
    {"EmptyFile",
     "",
     {"r.json: is empty; write a JSON array of resource objects, e.g. [{\"id\": \"dut-1\", "
      "\"online\": true, \"hostname\": \"rig-01\"}]"}},
    {"BlankFile",
     " \n\t\n",
     {"r.json: is empty; write a JSON array of resource objects, e.g. [{\"id\": \"dut-1\", "
      "\"online\": true, \"hostname\": \"rig-01\"}]"}},
    {"InvalidUtf8Byte",
     "[\n  {\"id\": \"a\xff\"}]",
     {"r.json:2:12: invalid UTF-8 (byte 0xFF); save the file as UTF-8"}},
    {"Latin1Text",
     "[{\"id\": \"caf\xe9\"}]",
     {"r.json:1:13: invalid UTF-8 (byte 0xE9); save the file as UTF-8"}},
    {"OverlongUtf8",
     "[{\"id\": \"\xc0\x80\"}]",
     {"r.json:1:10: invalid UTF-8 (byte 0xC0); save the file as UTF-8"}},
    {"Utf8Surrogate",
     "[{\"id\": \"\xed\xa0\x80\"}]",
     {"r.json:1:10: invalid UTF-8 (byte 0xED); save the file as UTF-8"}},
    {"TruncatedUtf8",
     "[{\"id\": \"x\"}] \xe2\x82",
     {"r.json:1:15: invalid UTF-8 (byte 0xE2); save the file as UTF-8"}},
    {"SyntaxErrorOnSecondLine",
     "[\n  {\"id\": \"a\" \"online\": true}\n]",
     {"r.json:2:21: invalid JSON: syntax error while parsing object - unexpected string literal; "
      "expected '}'"}},
    {"Truncated",
     "[{\"id\": \"a\"}",
     {"r.json:1:13: invalid JSON: syntax error while parsing array - unexpected end of input; "
      "expected ']'"}},
    {"NumberOverflow",
     "[{\"id\": \"a\",\n  \"rev\": -1e400}]",
     {"r.json:2:10: invalid JSON: number overflow parsing '-1e400'"}},
    {"NotAnArrayString",
     "\"dut-1\"",
     {"r.json: must be a JSON array of resource objects, found a string; wrap the objects in [ ]"}},
    {"NotAnArrayNumber",
     "7",
     {"r.json: must be a JSON array of resource objects, found a number; wrap the objects in [ ]"}},
    {"TooDeep",
     "[{\"id\": \"a\", \"x\": " + std::string(100, '[') + std::string(100, ']') + "}]",
     {"r.json: nested deeper than 64 levels; resources are a flat array of objects, keep "
      "attributes shallower"}},
    {"EntryNotObject",
     "[{\"id\": \"a\"}, 42]",
     {"r.json: entry 1: must be a resource object like {\"id\": \"dut-1\", \"online\": true}, "
      "found a number 42"}},
    {"EntryArray",
     "[[\"a\"]]",
     {"r.json: entry 0: must be a resource object like {\"id\": \"dut-1\", \"online\": true}, "
      "found an array [\"a\"]"}},
    {"MissingId",
     "[{\"online\": true}]",
     {"r.json: entry 0: missing \"id\"; give every resource a unique string \"id\""}},
    {"IdNotString",
     "[{\"id\": 7}]",
     {"r.json: entry 0: \"id\" must be a string, found 7; give every resource a unique string "
      "\"id\""}},
    {"IdNull",
     "[{\"id\": null}]",
     {"r.json: entry 0: \"id\" must be a string, found null; give every resource a unique string "
      "\"id\""}},
    {"IdEmpty", "[{\"id\": \"\"}]", {"r.json: entry 0 (id \"\"): \"id\" is empty" + kIdFix}},
    {"IdSlash",
     "[{\"id\": \"a/b\"}]",
     {"r.json: entry 0 (id \"a/b\"): \"id\" contains \"/\"" + kIdFix}},
    {"IdBackslash",
     "[{\"id\": \"a\\\\b\"}]",
     {"r.json: entry 0 (id \"a\\\\b\"): \"id\" contains \"\\\"" + kIdFix}},
    {"IdNul",
     "[{\"id\": \"a\\u0000b\"}]",
     {"r.json: entry 0 (id \"a\\u0000b\"): \"id\" contains a NUL byte" + kIdFix}},
    {"IdLeadingDot",
     "[{\"id\": \".hidden\"}]",
     {"r.json: entry 0 (id \".hidden\"): \"id\" starts with \".\"" + kIdFix}},
    {"IdDotDot",
     "[{\"id\": \"..\"}]",
     {"r.json: entry 0 (id \"..\"): \"id\" starts with \".\"" + kIdFix}},
    {"IdTooLong",
     "[{\"id\": \"" + std::string(201, 'x') + "\"}]",
     {"r.json: entry 0 (id \"" + std::string(59, 'x') +
      "...): \"id\" is 201 bytes long, more "
      "than 200" +
      kIdFix}},
    {"DuplicateId",
     "[{\"id\": \"a\"}, {\"id\": \"b\"}, {\"id\": \"a\"}, {\"id\": \"a\"}]",
     {"r.json: entry 2 (id \"a\"): duplicate id, also used by entry 0; give every resource a "
      "unique \"id\"",
      "r.json: entry 3 (id \"a\"): duplicate id, also used by entry 0; give every resource a "
      "unique \"id\""}},
    {"OnlineString",
     "[{\"id\": \"a\", \"online\": \"yes\"}]",
     {"r.json: entry 0 (id \"a\"): \"online\" must be true or false, found \"yes\""}},
    {"OnlineNumber",
     "[{\"id\": \"a\", \"online\": 1}]",
     {"r.json: entry 0 (id \"a\"): \"online\" must be true or false, found 1"}},
    {"OnlineNull",
     "[{\"id\": \"a\", \"online\": null}]",
     {"r.json: entry 0 (id \"a\"): \"online\" must be true or false, found null"}},
    {"HostnameNumber",
     "[{\"id\": \"a\", \"hostname\": 42}]",
     {"r.json: entry 0 (id \"a\"): \"hostname\" must be a string (the host the device is "
      "attached to), found 42"}},
    {"HostnameObject",
     "[{\"id\": \"a\", \"hostname\": {\"name\": \"rig\"}}]",
     {"r.json: entry 0 (id \"a\"): \"hostname\" must be a string (the host the device is "
      "attached to), found {\"name\":\"rig\"}"}},
    {"SeveralProblemsInOneEntry",
     "[{\"online\": \"no\", \"hostname\": 1}]",
     {"r.json: entry 0: missing \"id\"; give every resource a unique string \"id\"",
      "r.json: entry 0: \"online\" must be true or false, found \"no\"",
      "r.json: entry 0: \"hostname\" must be a string (the host the device is attached to), "
      "found 1"}},
    {"LongValuesAreShortened",
     "[{\"id\": \"a\", \"online\": \"" + std::string(100, 'y') + "\"}]",
     {"r.json: entry 0 (id \"a\"): \"online\" must be true or false, found \"" +
      std::string(59, 'y') + "..."}},
};

INSTANTIATE_TEST_SUITE_P(Inputs, BadResources, ::testing::ValuesIn(kBad), CaseName());

// ---------------------------------------------------------------------------------------------
// The quick reader (valid files) and the thorough path (parse_json, every error's exact place)

// Same value, same number types and same key order: Json's == takes 1, 1u and 1.0 as equal.
bool same_json(const Json& a, const Json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    auto left = a.items().begin();
    auto right = b.items().begin();
    for (; left != a.items().end(); ++left, ++right) {
      if (left.key() != right.key() || !same_json(left.value(), right.value())) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_json(a[i], b[i])) return false;
    }
    return true;
  }
  if (a.is_number_float()) {
    const auto x = a.get<double>();
    const auto y = b.get<double>();
    return x == y && std::signbit(x) == std::signbit(y);
  }
  return a == b;
}

// What loading gave, comparable: every resource, or the source and problems as printed.
struct Outcome {
  bool loaded = false;
  std::vector<Resource> resources;
  std::string source;
  std::vector<std::string> problems;
};

Outcome outcome_of(const std::function<Resources()>& load) {
  Outcome outcome;
  try {
    const auto resources = load();
    outcome.loaded = true;
    outcome.resources = resources.list();
  } catch (const ResourcesError& e) {
    outcome.source = e.source();
    for (const auto& problem : e.problems()) outcome.problems.push_back(problem.to_string());
  }
  return outcome;
}

void expect_same_outcome(const Outcome& ours, const Outcome& reference, const std::string& text) {
  SCOPED_TRACE("text: " + text);
  ASSERT_EQ(ours.loaded, reference.loaded);
  EXPECT_EQ(ours.source, reference.source);
  EXPECT_EQ(ours.problems, reference.problems);
  ASSERT_EQ(ours.resources.size(), reference.resources.size());
  for (std::size_t i = 0; i < ours.resources.size(); ++i) {
    EXPECT_EQ(ours.resources[i].id, reference.resources[i].id);
    EXPECT_TRUE(same_json(ours.resources[i].attributes, reference.resources[i].attributes))
        << ours.resources[i].attributes.dump(-1, ' ', false, Json::error_handler_t::replace);
  }
}

// Loads `text` both ways; returns whether the quick reader took it (a result or entry problems).
bool expect_both_paths_agree(const std::string& text) {
  const auto source = std::string("r.json");
  const auto reference =
      outcome_of([&] { return detail::parse_resources_text_thorough(text, source); });
  expect_same_outcome(outcome_of([&] { return parse_resources_text(text, source); }), reference,
                      text);
  bool quick_took_it = true;
  const auto quick = outcome_of([&] {
    auto resources = detail::parse_resources_text_quick(text, source);
    if (!resources) quick_took_it = false;
    return resources ? *resources : Resources();
  });
  if (quick_took_it) expect_same_outcome(quick, reference, text);
  return quick_took_it;
}

// Random resources.json texts, valid and broken, from a fixed seed: ids good, bad and repeated,
// every kind of JSON value, escapes, raw UTF-8, numbers at the edges of nlohmann's types.
class TextMaker {
 public:
  explicit TextMaker(unsigned seed) : random_(seed) {}

  std::string document() {
    std::string text = pick({"", "", "\xef\xbb\xbf", " \n"}) + "[";
    const auto entries = below(6);
    for (std::size_t i = 0; i < entries; ++i) {
      if (i > 0) text += "," + space();
      text += below(10) == 0 ? value(2) : entry();
    }
    return text + space() + "]" + space();
  }

  // `text` with one byte deleted, replaced or inserted, or cut short.
  std::string broken(std::string text) {
    static const char kBytes[] = {'"',    '\\',   ',',    ']',    '}', '{', '[', ':',
                                  '0',    '-',    'e',    '.',    'x', 'u', 't', '\0',
                                  '\x01', '\x80', '\xc3', '\xff', ' ', '\n'};
    const auto at = below(text.size() + 1);
    switch (below(4)) {
      case 0:
        if (at < text.size()) text.erase(at, 1);
        break;
      case 1:
        if (at < text.size()) text[at] = kBytes[below(sizeof kBytes)];
        break;
      case 2:
        text.insert(at, 1, kBytes[below(sizeof kBytes)]);
        break;
      default:
        text.resize(at);
    }
    return text;
  }

 private:
  std::size_t below(std::size_t limit) {
    return std::uniform_int_distribution<std::size_t>(0, limit - 1)(random_);
  }
  std::string pick(std::initializer_list<const char*> choices) {
    return *(choices.begin() + below(choices.size()));
  }
  std::string space() { return pick({"", "", "", " ", "\n  ", "\t", "\r\n"}); }

  std::string entry() {
    std::string text = "{" + space();
    const auto keys = below(6);
    for (std::size_t k = 0; k < keys; ++k) {
      if (k > 0) text += "," + space();
      switch (below(5)) {
        case 0:
          text += R"("id":)" + space() +
                  pick({R"("dut-1")", R"("dut-2")", R"("dut-3")", R"("")", R"("a/b")", R"(".x")",
                        R"("d\u00e9")", "7"});
          break;
        case 1:
          text += R"("online":)" + space() + pick({"true", "false", R"("yes")", "1"});
          break;
        case 2:
          text += R"("hostname":)" + space() + pick({R"("rig-01")", "null", "3"});
          break;
        default:
          text += string() + ":" + space() + value(3);
      }
    }
    return text + space() + "}";
  }

  std::string string() {
    return pick({R"("os")", R"("board")", R"("k")", R"("a\"b")", R"("tab\t\/\\")", R"("\u00e9")",
                 R"("\ud83d\ude00")", "\"caf\xc3\xa9 \xf0\x9f\x93\xb1\"", R"("\u0000")",
                 R"("\ud800")", R"("\udc00x")", R"("\u12G4")", "\"\xe0\x80\xaf\"", R"("")",
                 R"("a long string, longer than the small-string buffer")"});
  }

  std::string value(int depth) {
    switch (below(depth > 0 ? 9 : 7)) {
      case 0:
        return string();
      case 1:
        return pick({"0", "-0", "7", "-12", "42", "9223372036854775807", "-9223372036854775808",
                     "18446744073709551615", "18446744073709551616", "-9223372036854775809",
                     "1234567890123456789", "12345678901234567890123"});
      case 2:
        return pick({"1.5", "-2.5e3", "1E+2", "0.1", "1e-400", "1e999", "-0.0", "3.0e-2",
                     "1.7976931348623157e308", "0.30000000000000004"});
      case 3:
        return pick({"true", "false", "null"});
      case 4:
        return pick({"01", "1.", ".5", "+1", "-", "1e", "tru", "nul", "NaN"});
      case 5:
      case 6:
        return string();
      case 7: {
        std::string text = "[" + space();
        const auto count = below(4);
        for (std::size_t i = 0; i < count; ++i) {
          if (i > 0) text += "," + space();
          text += value(depth - 1);
        }
        return text + "]";
      }
      default: {
        std::string text = "{";
        const auto count = below(4);
        for (std::size_t i = 0; i < count; ++i) {
          if (i > 0) text += ",";
          text += string() + space() + ":" + value(depth - 1);
        }
        return text + "}";
      }
    }
  }

  std::mt19937 random_;
};

TEST(QuickReader, AgreesWithTheThoroughPathOnThousandsOfTextsValidOrBroken) {
  TextMaker maker(20261202);
  std::size_t quick = 0;
  std::size_t total = 0;
  for (int i = 0; i < 3000; ++i) {
    const auto text = maker.document();
    quick += expect_both_paths_agree(text) ? 1 : 0;
    quick += expect_both_paths_agree(maker.broken(text)) ? 1 : 0;
    quick += expect_both_paths_agree(maker.broken(maker.broken(text))) ? 1 : 0;
    total += 3;
    if (HasFailure()) break;
  }
  // Both ways must have been taken often, or the comparison proves little.
  EXPECT_GT(quick, total / 10);
  EXPECT_LT(quick, total * 9 / 10);
}

TEST(QuickReader, AgreesOnNestingAtAndBeyondTheLimit) {
  for (const int depth : {62, 63, 64, 65, 100}) {
    const std::string inner = std::string(static_cast<std::size_t>(depth - 2), '[') +
                              std::string(static_cast<std::size_t>(depth - 2), ']');
    expect_both_paths_agree(R"([{"id": "a", "deep": )" + inner + "}]");
    expect_both_paths_agree(R"([{"id": "a", "deep": )" + inner + "]");  // and a syntax error
  }
}

TEST(QuickReader, AgreesUnderALocaleWithADecimalComma) {
  // nlohmann reads floats with strtod after putting the locale's decimal point in place of '.'.
  const char* const previous = std::setlocale(LC_NUMERIC, nullptr);
  const std::string saved = previous == nullptr ? "C" : previous;
  if (std::setlocale(LC_NUMERIC, "de_DE.UTF-8") == nullptr &&
      std::setlocale(LC_NUMERIC, "C.UTF-8") == nullptr) {
    GTEST_SKIP() << "no other locale installed";
  }
  expect_both_paths_agree(R"([{"id": "a", "f": 1.5, "g": -2.25e1, "h": 0.1}])");
  std::setlocale(LC_NUMERIC, saved.c_str());
}

TEST(QuickReader, TakesFilesAsProgramsWriteThem) {
  // The shape of match_bench's list: what the quick reader exists for.
  Json list = Json::array();
  for (int i = 0; i < 1000; ++i) {
    list.push_back({{"id", "dut-" + std::to_string(i)},
                    {"online", i % 10 != 0},
                    {"board", {{"name", "nRF52840-DK"}, {"rev", i % 4}}},
                    {"tags", {"ble", "thread"}},
                    {"f", i / 8.0},
                    {"note", "caf\xc3\xa9 \"quoted\"\n"}});
  }
  for (const auto& text : {list.dump(), list.dump(2), "\xef\xbb\xbf" + list.dump()}) {
    const auto quick = detail::parse_resources_text_quick(text, "r.json");
    ASSERT_TRUE(quick.has_value());
    EXPECT_TRUE(expect_both_paths_agree(text));
    ASSERT_EQ(quick->size(), 1000u);
    EXPECT_TRUE(same_json((*quick)[999].attributes, Json::parse(text)[999]));
  }
}

TEST(QuickReader, LeavesToParseJsonWhatItCannotVouchFor) {
  for (const std::string text : {
           R"([{"id": "a"},])",                            // a syntax error
           R"([{"id": "a", "n": 18446744073709551616}])",  // becomes a double in nlohmann
           R"([{"id": "a", "n": 1e999}])",                 // out of range
           R"([{"id": "a", "s": "\udc00"}])",              // a lone surrogate
           "[{\"id\": \"a\xff\"}]",                        // invalid UTF-8
           "[{\"id\": \"a\"}] \x80",                       // invalid UTF-8 after the array
           R"({"id": "a"})",                               // not an array
           "",
       }) {
    EXPECT_FALSE(detail::parse_resources_text_quick(text, "r.json").has_value()) << text;
    expect_both_paths_agree(text);
  }
}

TEST(QuickReader, ReportsProblemsOfEntriesAsTheThoroughPathDoes) {
  // Valid JSON with bad entries: the quick reader words the problems itself.
  const std::string text =
      R"([{"id": "a"}, {"id": "a", "online": "yes"}, 3, {"id": ".x"}, {"hostname": 1}])";
  EXPECT_THROW(detail::parse_resources_text_quick(text, "r.json"), ResourcesError);
  EXPECT_TRUE(expect_both_paths_agree(text));
}

// ---------------------------------------------------------------------------------------------
// Valid input

TEST(Resources, KeepsEveryAttributeAsItIs) {
  const auto resources = parse_resources_text(
      R"([{"id": "a", "online": true, "hostname": "rig", "rev": 2, "f": 1.5, "tags": ["x"],
           "board": {"name": "n", "pins": [1, 2]}, "sim": false, "note": null},
          {"id": "b"}])",
      "r.json");
  ASSERT_EQ(resources.size(), 2u);
  EXPECT_EQ(resources[0].id, "a");
  EXPECT_EQ(resources[0].attributes,
            Json::parse(R"({"id": "a", "online": true, "hostname": "rig", "rev": 2, "f": 1.5,
                            "tags": ["x"], "board": {"name": "n", "pins": [1, 2]}, "sim": false,
                            "note": null})"));
  EXPECT_EQ(resources[1].attributes, (Json{{"id", "b"}}));
}

TEST(Resources, ParsedExactlyAsJsonParseWouldWithLastDuplicateKeyWinning) {
  // The loader builds the document itself (to bound nesting in one pass); number types, key
  // order and repeated keys must come out as nlohmann's own parser gives them.
  const std::string text =
      R"([{"id": "a", "n": 2, "neg": -3, "f": 2.0, "big": 18446744073709551615, "e": 1e-5,
           "os": "x", "os": "y", "s": "\u00e9\n", "nested": {"k": [true, null, {"z": 1}]}}])";
  const auto resources = parse_resources_text(text, "r.json");
  ASSERT_EQ(resources.size(), 1u);
  const Json expected = Json::parse(text)[0];
  EXPECT_EQ(resources[0].attributes.dump(), expected.dump());
  EXPECT_EQ(resources[0].attributes["os"], "y");
  EXPECT_TRUE(resources[0].attributes["n"].is_number_unsigned());
  EXPECT_TRUE(resources[0].attributes["neg"].is_number_integer());
  EXPECT_TRUE(resources[0].attributes["f"].is_number_float());
}

TEST(Resources, ALargeFileLoadsInOrderWithEveryEntry) {
  // Tens of thousands of entries: the loader once rescanned the whole array after each entry.
  // Only the result is asserted here; match_bench prints the load time.
  Json list = Json::array();
  for (int i = 0; i < 20000; ++i) list.push_back({{"id", "d" + std::to_string(i)}, {"i", i}});
  const auto resources = parse_resources_text(list.dump(), "big.json");
  ASSERT_EQ(resources.size(), 20000u);
  EXPECT_EQ(resources[12345].id, "d12345");
  EXPECT_EQ(resources.back().attributes["i"], 19999);
}

TEST(Resources, EmptyArrayHasNoResources) {
  EXPECT_TRUE(parse_resources_text("[]", "r.json").empty());
}

TEST(Resources, Utf8BomAndUnicodeAreAccepted) {
  const auto resources =
      parse_resources_text("\xef\xbb\xbf[{\"id\": \"caf\xc3\xa9-\xf0\x9f\x93\xb1\"}]", "r.json");
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0].id, "caf\xc3\xa9-\xf0\x9f\x93\xb1");
}

TEST(Resources, DocumentFormRejectsInvalidUtf8NamingTheEntry) {
  // A list built in memory skips the text check; invalid UTF-8 would make every later dump()
  // of the attributes throw (type_error.316).
  try {
    parse_resources(
        Json::array({Json{{"id", "ok"}}, Json{{"id", "b"}, {"board", {{"name", "nrf\xff"}}}},
                     Json{{"id", "c\xe9"}}}),
        "<list>");
    FAIL() << "no error";
  } catch (const ResourcesError& e) {
    ASSERT_EQ(e.problems().size(), 2u);
    EXPECT_EQ(e.problems()[0].to_string(),
              "<list>: entry 1: the value \"nrf\xef\xbf\xbd\" under \"board.name\" is not valid "
              "UTF-8 (byte 0xFF at offset 3); store attributes as UTF-8 text");
    EXPECT_EQ(e.problems()[1].to_string(),
              "<list>: entry 2: the value \"c\xef\xbf\xbd\" under \"id\" is not valid UTF-8 (byte "
              "0xE9 at offset 1); store attributes as UTF-8 text");
  }
}

TEST(Resources, DocumentFormNamesTheSource) {
  try {
    parse_resources(Json::array({Json{{"id", "a"}}, Json{{"id", "a"}}}), "<list>");
    FAIL() << "no error";
  } catch (const ResourcesError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0].to_string(),
              "<list>: entry 1 (id \"a\"): duplicate id, also used by entry 0; give every "
              "resource a unique \"id\"");
  }
}

TEST(Resource, OnlineIsTrueOnlyForTrue) {
  EXPECT_TRUE((Resource{"a", Json{{"id", "a"}, {"online", true}}}.online()));
  EXPECT_FALSE((Resource{"a", Json{{"id", "a"}, {"online", false}}}.online()));
  EXPECT_FALSE((Resource{"a", Json{{"id", "a"}}}.online()));
}

TEST(Resource, HostnameIsEmptyWhenAbsent) {
  EXPECT_EQ((Resource{"a", Json{{"id", "a"}, {"hostname", "rig"}}}.hostname()), "rig");
  EXPECT_EQ((Resource{"a", Json{{"id", "a"}}}.hostname()), "");
}

struct IdCase {
  const char* name;
  std::string id;
  std::string reason;
};

std::ostream& operator<<(std::ostream& out, const IdCase& c) { return out << c.id; }

class InvalidIdReason : public ::testing::TestWithParam<IdCase> {};

TEST_P(InvalidIdReason, SaysWhyAnIdCannotBeAFileName) {
  EXPECT_EQ(invalid_id_reason(GetParam().id), GetParam().reason);
}

const IdCase kIds[] = {
    {"Plain", "dut-1", ""},
    {"InnerDots", "a.b.c", ""},
    {"Unicode", "caf\xc3\xa9", ""},
    {"TwoHundredBytes", std::string(200, 'x'), ""},
    {"Empty", "", "is empty"},
    {"TooLong", std::string(201, 'x'), "is 201 bytes long, more than 200"},
    {"Slash", "a/b", "contains \"/\""},
    {"Backslash", "a\\b", "contains \"\\\""},
    {"Nul", std::string("a\0b", 3), "contains a NUL byte"},
    {"LeadingDot", ".a", "starts with \".\""},
    {"Dot", ".", "starts with \".\""},
};

INSTANTIATE_TEST_SUITE_P(Ids, InvalidIdReason, ::testing::ValuesIn(kIds), CaseName());

}  // namespace
}  // namespace lockable

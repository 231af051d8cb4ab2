// Requirements: the two text forms, errors raised at parse time, implicit filters and reasons.
#include <lockable/error.hpp>
#include <lockable/requirements.hpp>

#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "lockable/test/case_name.hpp"

namespace lockable {
namespace {

using test::CaseName;

std::string parse_error(const std::string& text) {
  try {
    Requirements::parse(text);
  } catch (const RequirementsError& e) {
    return e.what();
  }
  return "(no error)";
}

// ---------------------------------------------------------------------------------------------
// Forms

struct FormCase {
  const char* name;
  const char* text;
  const char* json;  // expected json(), compact
};

std::ostream& operator<<(std::ostream& out, const FormCase& c) { return out << c.text; }

class RequirementsForm : public ::testing::TestWithParam<FormCase> {};

TEST_P(RequirementsForm, NormalisesToTheUsersJsonObject) {
  const auto requirements = Requirements::parse(GetParam().text);
  EXPECT_EQ(requirements.to_string(), GetParam().json);
  EXPECT_EQ(requirements.json(), Json::parse(GetParam().json));
}

const FormCase kForms[] = {
    {"Empty", "", "{}"},
    {"Blank", " \t\n ", "{}"},
    {"EmptyObject", "{}", "{}"},
    {"JsonOneLine", R"({"os": "Android", "board.rev": {"$gte": 2}})",
     R"({"board.rev":{"$gte":2},"os":"Android"})"},
    {"JsonSeveralLines", "\n  {\n  \"os\": \"Android\",\n  \"board\": {\"rev\": 2}\n}\n",
     R"({"board":{"rev":2},"os":"Android"})"},
    {"PairsKeepValuesAsTyped", "os=Android&ver=11&board.rev=2",
     R"({"board.rev":"2","os":"Android","ver":"11"})"},
    {"PairsJsonLiterals", "online=true&busy=false&hostname=null",
     R"({"busy":false,"hostname":null,"online":true})"},
    {"PairsTrimSpaces", "  os = Android &  ver=11 ", R"({"os":"Android","ver":"11"})"},
    {"PairValueMayHoldEquals", "note=a=b", R"({"note":"a=b"})"},
    {"PairsTrueFalseInAnyCase", "a=True&b=FALSE&c=tRuE&d=truer",
     R"({"a":true,"b":false,"c":true,"d":"truer"})"},
    {"PairsTrimBlanksAroundTrueFalse", " online = True ", R"({"online":true})"},
    {"PairsNullOnlyInLowerCase", "a=null&b=Null", R"({"a":null,"b":"Null"})"},
};

INSTANTIATE_TEST_SUITE_P(Forms, RequirementsForm, ::testing::ValuesIn(kForms), CaseName());

TEST(Requirements, DefaultMatchesEverything) {
  const Requirements requirements;
  EXPECT_EQ(requirements.to_string(), "{}");
  EXPECT_TRUE(requirements.matches(Json::object()));
  EXPECT_TRUE(requirements.matches(Json{{"online", false}}));
  EXPECT_FALSE(requirements.mismatch_reason(Json::object()).has_value());
}

TEST(Requirements, FromJsonKeepsTheObject) {
  const Json query = {{"os", "Android"}, {"board", {{"rev", 2}}}};
  const auto requirements = Requirements::from_json(query);
  EXPECT_EQ(requirements.json(), query);
  EXPECT_TRUE(requirements.matches(Json{{"os", "Android"}, {"board", {{"rev", 2}, {"x", 1}}}}));
}

TEST(Requirements, FromJsonRejectsNonObjects) {
  try {
    Requirements::from_json(Json::array({1, 2}));
    FAIL() << "no error";
  } catch (const RequirementsError& e) {
    EXPECT_STREQ(e.what(),
                 "requirements: must be a JSON object like {\"os\": \"Android\"}, found an array");
  }
}

TEST(Requirements, CopiesShareTheCompiledQuery) {
  const auto original = Requirements::parse(R"({"model": {"$regex": "^Pixel"}})");
  const Requirements copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  EXPECT_EQ(copy.json(), original.json());
  EXPECT_TRUE(copy.matches(Json{{"model", "Pixel 7"}}));
  EXPECT_FALSE(copy.matches(Json{{"model", "Galaxy"}}));
}

// ---------------------------------------------------------------------------------------------
// Errors: every one raised by parse, never by matching, with a message naming the key and fix.

struct ErrorCase {
  const char* name;
  std::string text;
  std::string message;
};

std::ostream& operator<<(std::ostream& out, const ErrorCase& c) { return out << c.text; }

class RequirementsErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(RequirementsErrorTest, IsRaisedAtParseTimeWithAClearMessage) {
  EXPECT_EQ(parse_error(GetParam().text), GetParam().message);
}

const std::string kHint =
    "write a JSON object like {\"os\": \"Android\"} or pairs like os=Android&board.rev=2";

std::string nested(int levels) {
  std::string text;
  for (int i = 0; i < levels; ++i) text += "{\"a\":";
  text += "1";
  for (int i = 0; i < levels; ++i) text += "}";
  return text;
}

const ErrorCase kErrors[] = {
    // JSON form
    {"JsonSyntaxLineAndColumn", "{\n  \"a\": 1,\n  \"b\" 2\n}",
     "requirements: invalid JSON at line 3, column 7: syntax error while parsing object "
     "separator - unexpected number literal; expected ':'; " +
         kHint},
    {"JsonTrailingComma", R"({"a": 1,})",
     "requirements: invalid JSON at line 1, column 9: syntax error while parsing object key - "
     "unexpected '}'; expected string literal; " +
         kHint},
    {"JsonTruncated", R"({"a":)",
     "requirements: invalid JSON at line 1, column 6: syntax error while parsing value - "
     "unexpected end of input; expected '[', '{', or a literal; " +
         kHint},
    {"JsonNumberOverflow", "{\n  \"a\": 1e999}",
     "requirements: invalid JSON at line 2, column 8: number overflow parsing '1e999'; " + kHint},
    {"JsonArray", "[1, 2]",
     "requirements: must be a JSON object like {\"os\": \"Android\"}, found an array"},
    {"JsonNumber", "42",
     "requirements: must be a JSON object like {\"os\": \"Android\"}, found a number"},
    {"JsonString", "\"os\"",
     "requirements: must be a JSON object like {\"os\": \"Android\"}, found a string"},
    {"JsonKeyDoubleDot", R"({"a..b": 1})",
     "requirements: key \"a..b\" contains \"..\"; write attribute paths like \"board.rev\""},
    {"JsonKeyLeadingDot", R"({".a": 1})",
     "requirements: key \".a\" starts with \".\"; write attribute paths like \"board.rev\""},
    {"JsonKeyTrailingDot", R"({"a.": 1})",
     "requirements: key \"a.\" ends with \".\"; write attribute paths like \"board.rev\""},
    {"JsonKeyEmpty", R"({"": 1})",
     "requirements: key \"\" is empty; write attribute paths like \"board.rev\""},
    {"JsonNestedKeyDoubleDot", R"({"board": {"x..y": 1}})",
     "requirements: key \"x..y\" under \"board\" contains \"..\"; write attribute paths like "
     "\"board.rev\""},
    {"UnknownOperatorUnderField", R"({"version": {"$foo": 1}})",
     "requirements: unknown operator \"$foo\" under \"version\"; use one of $eq, $ne, $gt, $gte, "
     "$lt, $lte, $in, $nin, $exists, $type, $mod, $regex (with $options), $not, $all, $size, "
     "$elemMatch"},
    {"UnknownOperatorUnderNestedField", R"({"board": {"rev": {"$gtx": 1}}})",
     "requirements: unknown operator \"$gtx\" under \"board.rev\"; use one of $eq, $ne, $gt, "
     "$gte, $lt, $lte, $in, $nin, $exists, $type, $mod, $regex (with $options), $not, $all, $size, "
     "$elemMatch"},
    {"UnknownOperatorAtTop", R"({"$foo": 1})",
     "requirements: unknown operator \"$foo\"; at this level use $and, $or, $nor or a field "
     "name"},
    {"UnknownOperatorInsideOr", R"({"$or": [{"a": {"$bad": 1}}]})",
     "requirements: unknown operator \"$bad\" under \"a\"; use one of $eq, $ne, $gt, $gte, $lt, "
     "$lte, $in, $nin, $exists, $type, $mod, $regex (with $options), $not, $all, $size, "
     "$elemMatch"},
    {"ValueOperatorAtTop", R"({"$gt": 1})",
     "requirements: operator $gt must be applied to a field, e.g. {\"version\": {\"$gt\": ...}}"},
    {"LogicalOperatorUnderField", R"({"a": {"$or": [{"b": 1}]}})",
     "requirements: $or under \"a\" must be at the top level of a query, e.g. {\"$or\": "
     "[{\"os\": \"Android\"}, ...]}"},
    {"OperatorsMixedWithFields", R"({"a": {"$gt": 1, "b": 2}})",
     "requirements: \"a\" mixes an operator ($gt) with a field (b); put the field in its own key, "
     "e.g. {\"a.b\": ...}"},
    {"InvalidRegex", R"({"model": {"$regex": "("}})",
     "requirements: invalid $regex \"(\" under \"model\": Unmatched marking parenthesis ( or \\(. "
     " The error occurred while parsing the regular expression: '(>>>HERE>>>'; write an "
     "ECMAScript regular expression, e.g. \"^Pixel [0-9]+$\""},
    {"InvalidRegexInsideNot", R"({"model": {"$not": {"$regex": "[a-"}}})",
     "requirements: invalid $regex \"[a-\" under \"model\": Unmatched [ or [^ in character class "
     "declaration.  The error occurred while parsing the regular expression: '[a->>>HERE>>>'; "
     "write an ECMAScript regular expression, e.g. \"^Pixel [0-9]+$\""},
    {"RegexNotString", R"({"model": {"$regex": 1}})",
     "requirements: $regex under \"model\" needs a string, found 1"},
    {"RegexTooLong", "{\"m\": {\"$regex\": \"" + std::string(1001, 'a') + "\"}}",
     "requirements: $regex under \"m\" is 1001 bytes long, more than the limit of 1000; use a "
     "shorter pattern"},
    {"OptionsWithoutRegex", R"({"m": {"$options": "i"}})",
     "requirements: $options under \"m\" needs a $regex next to it"},
    {"InNotArray", R"({"a": {"$in": 1}})",
     "requirements: $in under \"a\" needs an array, e.g. [\"a\", \"b\"], found 1"},
    {"NinNotArray", R"({"a": {"$nin": "x"}})",
     "requirements: $nin under \"a\" needs an array, e.g. [\"a\", \"b\"], found \"x\""},
    {"AllNotArray", R"({"a": {"$all": {}}})",
     "requirements: $all under \"a\" needs an array, e.g. [\"a\", \"b\"], found {}"},
    {"ExistsNotBool", R"({"a": {"$exists": 1}})",
     "requirements: $exists under \"a\" needs true or false, found 1"},
    {"SizeNegative", R"({"a": {"$size": -1}})",
     "requirements: $size under \"a\" needs a non-negative integer (or a condition on the "
     "length, e.g. {\"$gt\": 2}), found -1"},
    {"SizeFraction", R"({"a": {"$size": 1.5}})",
     "requirements: $size under \"a\" needs a non-negative integer (or a condition on the "
     "length, e.g. {\"$gt\": 2}), found 1.5"},
    {"ComparisonWithArray", R"({"a": {"$gt": [1]}})",
     "requirements: $gt under \"a\" needs a number or a string, found [1]"},
    {"ComparisonWithNull", R"({"a": {"$lte": null}})",
     "requirements: $lte under \"a\" needs a number or a string, found null"},
    {"NotWithScalar", R"({"a": {"$not": 1}})",
     "requirements: $not under \"a\" needs an object of operators, e.g. {\"$regex\": "
     "\"^Pixel\"}, found 1"},
    {"NotWithFields", R"({"a": {"$not": {"b": 1}}})",
     "requirements: $not under \"a\" needs an object of operators, e.g. {\"$regex\": "
     "\"^Pixel\"}, found {\"b\":1}"},
    {"ElemMatchNotObject", R"({"a": {"$elemMatch": 1}})",
     "requirements: $elemMatch under \"a\" needs an object, e.g. {\"$gte\": 2} or {\"name\": "
     "\"x\"}, found 1"},
    {"AndEmpty", R"({"$and": []})",
     "requirements: $and needs a non-empty array of query objects, found []; write e.g. "
     "{\"$and\": [{\"os\": \"Android\"}, {\"os\": \"iOS\"}]}"},
    {"OrNotArray", R"({"$or": {}})",
     "requirements: $or needs a non-empty array of query objects, found {}; write e.g. {\"$or\": "
     "[{\"os\": \"Android\"}, {\"os\": \"iOS\"}]}"},
    {"NorElementNotObject", R"({"$nor": [{"a": 1}, 1]})",
     "requirements: $nor element 1 must be a query object, found 1"},
    {"TooDeepWhenParsed", nested(70), "requirements: nested deeper than 64 levels; simplify it"},
    {"TooDeepArrays", std::string(100000, '['),
     "requirements: nested deeper than 64 levels; simplify it"},
    // key=value form
    {"PairWithoutEquals", "os", "requirements: \"os\" has no \"=\"; " + kHint},
    {"SecondPairWithoutEquals", "os=Android&board",
     "requirements: \"board\" has no \"=\"; " + kHint},
    {"PairKeyEmpty", "=1",
     "requirements: key \"\" in \"=1\" is empty; write pairs like board.rev=2"},
    {"PairKeyLeadingDot", ".a=1",
     "requirements: key \".a\" in \".a=1\" starts with \".\"; write pairs like board.rev=2"},
    {"PairKeyTrailingDot", "a.=1",
     "requirements: key \"a.\" in \"a.=1\" ends with \".\"; write pairs like board.rev=2"},
    {"PairKeyDoubleDot", "a..b=1",
     "requirements: key \"a..b\" in \"a..b=1\" contains \"..\"; write pairs like board.rev=2"},
    {"PairOperatorKey", "$gt=1",
     "requirements: key \"$gt\" looks like an operator; operators need the JSON form, e.g. "
     "{\"version\": {\"$gte\": \"13\"}}"},
    {"PairEmptyBetweenAmpersands", "a=1&&b=2",
     "requirements: empty pair in \"a=1&&b=2\"; separate key=value pairs with a single &"},
    {"PairTrailingAmpersand", "a=1&",
     "requirements: empty pair in \"a=1&\"; separate key=value pairs with a single &"},
    {"PairRepeatedKey", "a=1&a=2", "requirements: key \"a\" is given twice; give each key once"},
    {"PairEmptyValue", "os=Android&note=",
     "requirements: pair \"note=\" has no value; write one after \"=\", e.g. note=1, or "
     "{\"note\": \"\"} for an empty string"},
    {"PairBlankValue", "note = \t",
     "requirements: pair \"note =\" has no value; write one after \"=\", e.g. note=1, or "
     "{\"note\": \"\"} for an empty string"},
    // invalid UTF-8 (the invalid byte is shown as U+FFFD)
    {"PairKeyInvalidUtf8", "os=Android&x\xff=null",
     "requirements: invalid UTF-8 in the pair \"x\xef\xbf\xbd=null\" at byte offset 12 (byte "
     "0xFF); write requirements as UTF-8 text"},
    {"PairValueInvalidUtf8", "model=caf\xc3",
     "requirements: invalid UTF-8 in the pair \"model=caf\xef\xbf\xbd\" at byte offset 9 (byte "
     "0xC3); write requirements as UTF-8 text"},
    {"JsonInvalidUtf8", "{\"os\": \"\xc0\xaf\"}",
     "requirements: invalid UTF-8 at byte offset 8 (byte 0xC0); write requirements as UTF-8 "
     "text"},
    {"JsonSurrogateBytes", "{\"os\": \"\xed\xa0\x80\"}",
     "requirements: invalid UTF-8 at byte offset 8 (byte 0xED); write requirements as UTF-8 "
     "text"},
    // $type
    {"TypeUnknownName", R"({"a": {"$type": "integer"}})",
     "requirements: $type under \"a\" has the unknown type \"integer\"; use a BSON type number "
     "(1 double, 2 string, 3 object, 4 array, 8 bool, 10 null, 16 int, 18 long, ...) or a name "
     "such as \"string\", \"number\", \"array\""},
    {"TypeUnknownNumber", R"({"a": {"$type": 42}})",
     "requirements: $type under \"a\" has the unknown type 42; use a BSON type number (1 double, "
     "2 string, 3 object, 4 array, 8 bool, 10 null, 16 int, 18 long, ...) or a name such as "
     "\"string\", \"number\", \"array\""},
    {"TypeFractionalNumber", R"({"a": {"$type": 2.5}})",
     "requirements: $type under \"a\" has the unknown type 2.5; use a BSON type number (1 double, "
     "2 string, 3 object, 4 array, 8 bool, 10 null, 16 int, 18 long, ...) or a name such as "
     "\"string\", \"number\", \"array\""},
    {"TypeUnknownInArray", R"({"a": {"$type": ["string", "text"]}})",
     "requirements: $type under \"a\" has the unknown type \"text\"; use a BSON type number (1 "
     "double, 2 string, 3 object, 4 array, 8 bool, 10 null, 16 int, 18 long, ...) or a name such "
     "as \"string\", \"number\", \"array\""},
    {"TypeEmptyArray", R"({"a": {"$type": []}})",
     "requirements: $type under \"a\" needs at least one type, found []"},
    {"TypeBoolean", R"({"a": {"$type": true}})",
     "requirements: $type under \"a\" needs a type name, a BSON type number or an array of them, "
     "e.g. \"string\" or [\"int\", \"null\"], found true"},
    // $mod: MongoDB's messages, then how to write it
    {"ModNotArray", R"({"a": {"$mod": 4}})",
     "requirements: $mod under \"a\": malformed mod, needs to be an array, found 4; write "
     "[divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModOneElement", R"({"a": {"$mod": [4]}})",
     "requirements: $mod under \"a\": malformed mod, not enough elements, found [4]; write "
     "[divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModThreeElements", R"({"a": {"$mod": [4, 1, 2]}})",
     "requirements: $mod under \"a\": malformed mod, too many elements, found [4,1,2]; write "
     "[divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModDivisorNotNumber", R"({"a": {"$mod": ["4", 1]}})",
     "requirements: $mod under \"a\": malformed mod, divisor not a number, found [\"4\",1]; "
     "write [divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModRemainderNotNumber", R"({"a": {"$mod": [4, null]}})",
     "requirements: $mod under \"a\": malformed mod, remainder not a number, found [4,null]; "
     "write [divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModDivisorZero", R"({"a": {"$mod": [0, 1]}})",
     "requirements: $mod under \"a\": divisor cannot be 0, found [0,1]; write [divisor, "
     "remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModDivisorTruncatesToZero", R"({"a": {"$mod": [0.5, 0]}})",
     "requirements: $mod under \"a\": divisor cannot be 0, found [0.5,0]; write [divisor, "
     "remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModDivisorOutOfRange", R"({"a": {"$mod": [1e19, 0]}})",
     "requirements: $mod under \"a\": malformed mod, divisor value is invalid (out of the 64-bit "
     "range), found [1e+19,0]; write [divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    {"ModRemainderTooLarge", R"({"a": {"$mod": [4, 9223372036854775808]}})",
     "requirements: $mod under \"a\": malformed mod, remainder value is out of the 64-bit range, "
     "found [4,9223372036854775808]; write [divisor, remainder], e.g. {\"$mod\": [4, 0]}"},
    // $size with a condition
    {"SizeEmptyCondition", R"({"a": {"$size": {}}})",
     "requirements: $size under \"a\" needs a non-negative integer or an object of operators on "
     "the length, e.g. {\"$gt\": 2}, found {}"},
    {"SizeConditionWithField", R"({"a": {"$size": {"n": 2}}})",
     "requirements: $size under \"a\" needs a non-negative integer or an object of operators on "
     "the length, e.g. {\"$gt\": 2}, found {\"n\":2}"},
    {"SizeConditionUnknownOperator", R"({"a": {"$size": {"$big": 2}}})",
     "requirements: unknown operator \"$big\" under \"a\"; use one of $eq, $ne, $gt, $gte, $lt, "
     "$lte, $in, $nin, $exists, $type, $mod, $regex (with $options), $not, $all, $size, "
     "$elemMatch"},
    // $all
    {"AllMixesElemMatchAndValues", R"({"a": {"$all": [{"$elemMatch": {"x": 1}}, 2]}})",
     "requirements: $all under \"a\" mixes $elemMatch clauses with other values (element 1 is "
     "2); write every element as {\"$elemMatch\": {...}}, or list plain values only"},
    {"AllWithOtherOperator", R"({"a": {"$all": [{"$gt": 1}]}})",
     "requirements: $all under \"a\" element 0 uses the operator $gt; $all takes values or "
     "{\"$elemMatch\": {...}} clauses only"},
    {"AllElemMatchNotObject", R"({"a": {"$all": [{"$elemMatch": 1}]}})",
     "requirements: $elemMatch under \"a\" needs an object, e.g. {\"$gte\": 2} or {\"name\": "
     "\"x\"}, found 1"},
    // regular expression flags
    {"OptionsUnknownFlags", R"({"m": {"$regex": "x", "$options": "iqgq"}})",
     "requirements: $options under \"m\" has the unknown flag(s) \"qg\"; use i (ignore case), m "
     "(^ and $ at line breaks), s (. matches a line break), x (ignore blanks and # comments)"},
    {"OptionsNotString", R"({"m": {"$regex": "x", "$options": 1}})",
     "requirements: $options under \"m\" needs a string of flags, e.g. \"i\", found 1"},
    {"LiteralUnknownFlags", R"({"port": {"$regex": "/dev/ttyACM"}})",
     "requirements: $regex \"/dev/ttyACM\" under \"port\" has the unknown flag(s) \"tyACM\" "
     "after its closing \"/\"; use i (ignore case), m (^ and $ at line breaks), s (. matches a "
     "line break), x (ignore blanks and # comments); to match a leading \"/\" literally, escape "
     "it: \"\\\\/...\""},
    {"LiteralFlagsAndOptions", R"({"m": {"$regex": "/^a/i", "$options": "m"}})",
     "requirements: $regex \"/^a/i\" under \"m\" has flags after its closing \"/\" and $options "
     "as well; give the flags in one place"},
    {"LiteralInvalidPattern", R"({"m": {"$regex": "/(/i"}})",
     "requirements: invalid $regex \"/(/i\" under \"m\": Unmatched marking parenthesis ( or \\(. "
     " The error occurred while parsing the regular expression: '(>>>HERE>>>'; write an "
     "ECMAScript regular expression, e.g. \"^Pixel [0-9]+$\""},
};

INSTANTIATE_TEST_SUITE_P(Errors, RequirementsErrorTest, ::testing::ValuesIn(kErrors), CaseName());

TEST(Requirements, DepthOfSixtyFourIsAccepted) {
  EXPECT_NO_THROW(Requirements::parse(nested(63)));
  const auto requirements = Requirements::from_json(Json::parse(nested(63)));
  EXPECT_TRUE(requirements.matches(Json::parse(nested(63))));
  EXPECT_EQ(parse_error(nested(65)), "requirements: nested deeper than 64 levels; simplify it");
}

TEST(Requirements, FromJsonRejectsTooDeepObjects) {
  Json deep = 1;
  for (int i = 0; i < 100; ++i) deep = Json{{"a", deep}};
  EXPECT_THROW(Requirements::from_json(deep), RequirementsError);
}

TEST(Requirements, FromJsonRejectsInvalidUtf8InKeysAndValues) {
  const auto error = [](const Json& query) -> std::string {
    try {
      Requirements::from_json(query);
    } catch (const RequirementsError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_EQ(error(Json{{"board", {{"name", {{"$in", {"ok", "nrf\xff"}}}}}}}),
            "requirements: the value \"nrf\xef\xbf\xbd\" under \"board.name\" is not valid UTF-8 "
            "(byte 0xFF at offset 3); write requirements as UTF-8 text");
  EXPECT_EQ(
      error(Json{{"$or", {Json{{"k\xe9y", 1}}}}}),
      "requirements: key \"k\xef\xbf\xbdy\" is not valid UTF-8 (byte 0xE9 at offset 1); write "
      "requirements as UTF-8 text");
  // Valid multi-byte text is fine, and is shown as it was written.
  const auto fine = Requirements::from_json(Json{{"model", "caf\xc3\xa9 \xf0\x9f\x93\xb1"}});
  EXPECT_EQ(fine.to_string(), "{\"model\":\"caf\xc3\xa9 \xf0\x9f\x93\xb1\"}");
}

TEST(Requirements, RegexOfOneThousandBytesIsAccepted) {
  const auto requirements =
      Requirements::parse("{\"m\": {\"$regex\": \"" + std::string(1000, 'a') + "\"}}");
  EXPECT_TRUE(requirements.matches(Json{{"m", std::string(1000, 'a')}}));
}

// ---------------------------------------------------------------------------------------------
// Implicit filters

TEST(ImplicitFilters, AddOnlineAndHostname) {
  const auto requirements = Requirements::parse("os=Android").with_implicit_filters("rig-01");
  EXPECT_EQ(requirements.json(),
            (Json{{"os", "Android"}, {"online", true}, {"hostname", "rig-01"}}));
  EXPECT_TRUE(
      requirements.matches(Json{{"os", "Android"}, {"online", true}, {"hostname", "rig-01"}}));
  EXPECT_FALSE(
      requirements.matches(Json{{"os", "Android"}, {"online", false}, {"hostname", "rig-01"}}));
  EXPECT_FALSE(requirements.matches(Json{{"os", "Android"}, {"hostname", "rig-01"}}));
  EXPECT_FALSE(
      requirements.matches(Json{{"os", "Android"}, {"online", true}, {"hostname", "rig-02"}}));
}

TEST(ImplicitFilters, LeaveTheOriginalJsonAsTheUserGaveIt) {
  const auto original = Requirements::parse("os=Android");
  const auto filtered = original.with_implicit_filters("rig-01");
  EXPECT_EQ(original.to_string(), R"({"os":"Android"})");
  EXPECT_TRUE(original.matches(Json{{"os", "Android"}}));
  EXPECT_FALSE(filtered.matches(Json{{"os", "Android"}}));
}

TEST(ImplicitFilters, NamedKeyReplacesTheFilter) {
  const auto requirements =
      Requirements::parse(R"({"online": false, "hostname": {"$in": ["a", "b"]}})")
          .with_implicit_filters("rig-01");
  EXPECT_TRUE(requirements.matches(Json{{"online", false}, {"hostname", "b"}}));
  EXPECT_FALSE(requirements.matches(Json{{"online", true}, {"hostname", "b"}}));
  EXPECT_FALSE(requirements.matches(Json{{"online", false}, {"hostname", "rig-01"}}));
}

struct LiftCase {
  const char* name;
  const char* text;
  const char* json;  // json() after with_implicit_filters("rig-01")
  Json attributes;
  bool expected;
};

std::ostream& operator<<(std::ostream& out, const LiftCase& c) { return out << c.text; }

class NullLifting : public ::testing::TestWithParam<LiftCase> {};

TEST_P(NullLifting, NullRemovesTheImplicitFilter) {
  const auto& c = GetParam();
  const auto requirements = Requirements::parse(c.text).with_implicit_filters("rig-01");
  EXPECT_EQ(requirements.json(), Json::parse(c.json));
  EXPECT_EQ(requirements.matches(c.attributes), c.expected) << c.attributes;
}

const LiftCase kLifts[] = {
    {"OnlineNullAllowsOffline", R"({"online": null})", R"({"hostname": "rig-01"})",
     Json{{"online", false}, {"hostname", "rig-01"}}, true},
    {"OnlineNullAllowsMissingOnline", R"({"online": null})", R"({"hostname": "rig-01"})",
     Json{{"hostname", "rig-01"}}, true},
    {"OnlineNullKeepsHostnameFilter", R"({"online": null})", R"({"hostname": "rig-01"})",
     Json{{"online", false}, {"hostname", "rig-02"}}, false},
    {"HostnameNullAllowsAnyHost", R"({"hostname": null})", R"({"online": true})",
     Json{{"online", true}, {"hostname", "rig-02"}}, true},
    {"HostnameNullAllowsMissingHost", R"({"hostname": null})", R"({"online": true})",
     Json{{"online", true}}, true},
    {"HostnameNullKeepsOnlineFilter", R"({"hostname": null})", R"({"online": true})",
     Json{{"online", false}, {"hostname", "rig-02"}}, false},
    {"BothNullInPairForm", "online=null&hostname=null&os=iOS", R"({"os": "iOS"})",
     Json{{"os", "iOS"}, {"online", false}, {"hostname", "x"}}, true},
    {"NullDoesNotLiftOtherKeys", R"({"os": null})",
     R"({"os": null, "online": true, "hostname": "rig-01"})",
     Json{{"os", "x"}, {"online", true}, {"hostname", "rig-01"}}, false},
};

INSTANTIATE_TEST_SUITE_P(Filters, NullLifting, ::testing::ValuesIn(kLifts), CaseName());

TEST(ImplicitFilters, WithoutFiltersNullMeansNullOrMissing) {
  const auto requirements = Requirements::parse(R"({"online": null})");
  EXPECT_TRUE(requirements.matches(Json::object()));
  EXPECT_FALSE(requirements.matches(Json{{"online", true}}));
}

TEST(ImplicitFilters, ApplyingTwiceChangesNothing) {
  const auto once = Requirements::parse("os=Android").with_implicit_filters("rig-01");
  const auto twice = once.with_implicit_filters("rig-02");
  EXPECT_EQ(twice.json(), once.json());
  EXPECT_TRUE(twice.matches(Json{{"os", "Android"}, {"online", true}, {"hostname", "rig-01"}}));
}

// ---------------------------------------------------------------------------------------------
// Mismatch reasons

struct ReasonCase {
  const char* name;
  const char* text;
  bool implicit;  // with_implicit_filters("rig-01")
  Json attributes;
  const char* reason;
};

std::ostream& operator<<(std::ostream& out, const ReasonCase& c) { return out << c.text; }

class MismatchReason : public ::testing::TestWithParam<ReasonCase> {};

TEST_P(MismatchReason, NamesTheFirstFailingClause) {
  const auto& c = GetParam();
  auto requirements = Requirements::parse(c.text);
  if (c.implicit) requirements = requirements.with_implicit_filters("rig-01");
  const auto reason = requirements.mismatch_reason(c.attributes);
  ASSERT_TRUE(reason.has_value());
  EXPECT_EQ(*reason, c.reason);
}

const Json kGood = {{"online", true},
                    {"hostname", "rig-01"},
                    {"os", "Android"},
                    {"version", "13"},
                    {"board", {{"rev", 3}}}};

Json with(Json attributes, const std::string& key, Json value) {
  if (value.is_null()) {
    attributes.erase(key);
  } else {
    attributes[key] = std::move(value);
  }
  return attributes;
}

const ReasonCase kReasons[] = {
    {"Offline", "os=Android", true, with(kGood, "online", false), "offline"},
    {"OnlineMissing", "os=Android", true, with(kGood, "online", nullptr), "offline"},
    {"OfflineIsReportedBeforeOtherClauses", "os=iOS", true, with(kGood, "online", false),
     "offline"},
    {"OtherHost", "os=Android", true, with(kGood, "hostname", "rig-02"),
     R"(hostname is "rig-02", required "rig-01")"},
    {"HostMissing", "os=Android", true, with(kGood, "hostname", nullptr),
     R"(hostname is missing, required "rig-01")"},
    {"UserOnlineClause", R"({"online": true})", false, with(kGood, "online", false),
     "online is false, required true"},
    {"NestedValue", R"({"board": {"rev": 2}})", true, kGood, "board.rev is 3, required 2"},
    {"DottedValue", R"({"board.rev": 2})", true, kGood, "board.rev is 3, required 2"},
    {"PairValue", "board.rev=2", true, kGood, R"(board.rev is 3, required "2")"},
    {"MissingField", R"({"os": "Android", "model": "Pixel 7"})", true, kGood,
     R"(model is missing, required "Pixel 7")"},
    {"MissingInPairForm", "os=Android&sim=true", true, kGood, "sim is missing, required true"},
    {"Operator", R"({"version": {"$gte": "14"}})", true, kGood,
     R"(version is "13", required {"$gte":"14"})"},
    {"RegexOperator", R"({"os": {"$regex": "^i"}})", true, kGood,
     R"(os is "Android", required {"$regex":"^i"})"},
    {"ArrayValue", R"({"tags": "can"})", false, Json{{"tags", {"ble", "thread"}}},
     R"(tags is ["ble","thread"], required "can")"},
    {"ValuesFromSeveralElements", R"({"usb.port": 9})", false,
     Json{{"usb", {{{"port", 1}}, {{"port", 2}}}}}, "usb.port is [1,2], required 9"},
    {"Or", R"({"$or": [{"os": "iOS"}, {"board.rev": 2}]})", true, kGood,
     R"(does not satisfy {"$or":[{"os":"iOS"},{"board.rev":2}]})"},
    {"Nor", R"({"$nor": [{"os": "Android"}]})", false, kGood,
     R"(does not satisfy {"$nor":[{"os":"Android"}]})"},
    {"FirstFailingClauseInKeyOrder", R"({"os": "iOS", "version": "99"})", true, kGood,
     R"(os is "Android", required "iOS")"},
};

INSTANTIATE_TEST_SUITE_P(Reasons, MismatchReason, ::testing::ValuesIn(kReasons), CaseName());

TEST(MismatchReasonTest, NoneWhenTheResourceMatches) {
  const auto requirements = Requirements::parse("os=Android").with_implicit_filters("rig-01");
  EXPECT_FALSE(requirements.mismatch_reason(kGood).has_value());
}

TEST(ExplainMismatches, OneLinePerNonMatchingResourcePrefixedWithItsId) {
  const Resources resources = {
      {"dut-1", with(kGood, "id", "dut-1")},
      {"dut-2", with(with(kGood, "id", "dut-2"), "online", false)},
      {"dut-3", with(with(kGood, "id", "dut-3"), "os", "iOS")},
      {"dut-4", with(with(kGood, "id", "dut-4"), "hostname", "rig-02")},
  };
  const auto requirements = Requirements::parse("os=Android").with_implicit_filters("rig-01");
  EXPECT_EQ(explain_mismatches(resources, requirements),
            (std::vector<std::string>{"dut-2: offline", R"(dut-3: os is "iOS", required "Android")",
                                      R"(dut-4: hostname is "rig-02", required "rig-01")"}));
  EXPECT_EQ(find_matches(resources, requirements), (std::vector<std::size_t>{0}));
}

}  // namespace
}  // namespace lockable

// Matching semantics (MongoDB rules as in the Python lockable package), one table row per case.
#include <lockable/requirements.hpp>

#include "core/matching.hpp"

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "lockable/test/case_name.hpp"

namespace lockable {
namespace {

using test::CaseName;

const Json& device() {
  static const Json attributes = Json::parse(R"({
    "id": "pixel-7-01", "online": true, "hostname": "rig-01", "os": "Android",
    "version": "14", "ver": 11, "model": "Pixel 7", "score": 2.5, "nothing": null,
    "board": {"name": "nRF52840-DK", "rev": 2, "chip": {"flash": 1024}},
    "tags": ["ble", "thread"], "ports": [1, 5, 9], "empty": [],
    "usb": [{"hub": 1, "port": 2}, {"hub": 2, "port": 7}],
    "matrix": [[1, 2], [3, 4]]
  })");
  return attributes;
}

struct MatchCase {
  const char* name;
  const char* requirement;  // either form, as a user types it
  bool expected;
};

std::ostream& operator<<(std::ostream& out, const MatchCase& c) {
  return out << c.name << ": " << c.requirement;
}

class MatchingTest : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchingTest, MatchesLikeMongo) {
  const auto& c = GetParam();
  const auto requirements = Requirements::parse(c.requirement);
  EXPECT_EQ(requirements.matches(device()), c.expected) << c.requirement;
  // A mismatch always has a reason and a match never has one.
  EXPECT_EQ(requirements.mismatch_reason(device()).has_value(), !c.expected);
  // The column index answers every case as the tree matcher does.
  const Resources one = {{"pixel-7-01", device()}};
  EXPECT_EQ(detail::indexed_matches(one, requirements),
            c.expected ? std::vector<std::size_t>{0} : std::vector<std::size_t>{})
      << c.requirement;
}

const MatchCase kCases[] = {
    // implicit equality, nested objects, dotted keys
    {"EmptyMatchesAll", "{}", true},
    {"BlankMatchesAll", "  \n ", true},
    {"StringEqual", R"({"os": "Android"})", true},
    {"StringNotEqual", R"({"os": "iOS"})", false},
    {"StringIsCaseSensitive", R"({"os": "android"})", false},
    {"NumberIntEqualsFloat", R"({"ver": 11.0})", true},
    {"StringDoesNotEqualNumber", R"({"ver": "11"})", false},
    {"BoolEqual", R"({"online": true})", true},
    {"BoolNotEqual", R"({"online": false})", false},
    {"NullMatchesNull", R"({"nothing": null})", true},
    {"NullMatchesMissing", R"({"absent": null})", true},
    {"NullDoesNotMatchValue", R"({"os": null})", false},
    {"MissingFieldDoesNotEqual", R"({"absent": "x"})", false},
    {"NestedObjectMatchesPart", R"({"board": {"rev": 2}})", true},
    {"NestedObjectMismatch", R"({"board": {"rev": 3}})", false},
    {"NestedObjectAllParts", R"({"board": {"rev": 2, "name": "nRF52840-DK"}})", true},
    {"NestedObjectOneWrongPart", R"({"board": {"rev": 2, "name": "other"}})", false},
    {"NestedTwoLevels", R"({"board": {"chip": {"flash": 1024}}})", true},
    {"NestedWithOperator", R"({"board": {"rev": {"$gte": 2}}})", true},
    {"NestedEmptyObjectNeedsObject", R"({"board": {}})", true},
    {"NestedEmptyObjectOnScalar", R"({"os": {}})", false},
    {"NestedObjectOnScalar", R"({"os": {"name": "x"}})", false},
    {"DottedKey", R"({"board.rev": 2})", true},
    {"DottedKeyMismatch", R"({"board.rev": 3})", false},
    {"DottedKeyDeep", R"({"board.chip.flash": 1024})", true},
    {"DottedKeyMissingParent", R"({"nope.rev": 2})", false},
    {"DottedKeyThroughScalar", R"({"os.rev": 2})", false},
    {"DottedKeyInsideNested", R"({"board": {"chip.flash": 1024}})", true},
    {"DottedKeyThroughArrayOfObjects", R"({"usb.port": 7})", true},
    {"DottedKeyThroughArrayNoElement", R"({"usb.port": 8})", false},
    {"DottedKeyArrayIndex", R"({"ports.1": 5})", true},
    {"DottedKeyArrayIndexWrong", R"({"ports.0": 5})", false},
    {"DottedKeyArrayIndexOfObject", R"({"usb.1.hub": 2})", true},
    // arrays with implicit equality
    {"ScalarInArrayMeansContains", R"({"tags": "ble"})", true},
    {"ScalarNotInArray", R"({"tags": "can"})", false},
    {"WholeArrayEqual", R"({"tags": ["ble", "thread"]})", true},
    {"WholeArrayOrderMatters", R"({"tags": ["thread", "ble"]})", false},
    {"ArrayElementOfNestedArray", R"({"matrix": [3, 4]})", true},
    // $eq / $ne
    {"EqMatches", R"({"os": {"$eq": "Android"}})", true},
    {"EqMismatch", R"({"os": {"$eq": "iOS"}})", false},
    {"EqArrayContains", R"({"ports": {"$eq": 5}})", true},
    {"EqObjectIsExact", R"({"board.chip": {"$eq": {"flash": 1024}}})", true},
    {"EqObjectPartIsNotEqual", R"({"board": {"$eq": {"rev": 2}}})", false},
    {"NeMatches", R"({"os": {"$ne": "iOS"}})", true},
    {"NeMismatch", R"({"os": {"$ne": "Android"}})", false},
    {"NeMatchesMissing", R"({"absent": {"$ne": "x"}})", true},
    {"NeNullMismatchesMissing", R"({"absent": {"$ne": null}})", false},
    {"NeArrayMeansNoElementEquals", R"({"tags": {"$ne": "ble"}})", false},
    {"NeArrayNoElementEquals", R"({"tags": {"$ne": "can"}})", true},
    // comparisons
    {"GtNumber", R"({"board.rev": {"$gt": 1}})", true},
    {"GtNumberEqualFails", R"({"board.rev": {"$gt": 2}})", false},
    {"GteNumber", R"({"board.rev": {"$gte": 2}})", true},
    {"GteNumberFails", R"({"board.rev": {"$gte": 3}})", false},
    {"LtNumber", R"({"board.rev": {"$lt": 3}})", true},
    {"LtNumberFails", R"({"board.rev": {"$lt": 2}})", false},
    {"LteNumber", R"({"board.rev": {"$lte": 2}})", true},
    {"LteNumberFails", R"({"board.rev": {"$lte": 1}})", false},
    {"GtMixedIntFloat", R"({"board.rev": {"$gt": 1.5}})", true},
    {"LtFloatAttributeIntBound", R"({"score": {"$lt": 3}})", true},
    {"GteString", R"({"version": {"$gte": "13"}})", true},
    {"GteStringFails", R"({"version": {"$gte": "15"}})", false},
    {"LtStringIsLexicographic", R"({"model": {"$lt": "Pixel 8"}})", true},
    {"NumberAgainstStringNeverMatches", R"({"version": {"$gte": 1}})", false},
    {"StringAgainstNumberNeverMatches", R"({"ver": {"$lt": "99"}})", false},
    {"BoolAgainstNumberNeverMatches", R"({"online": {"$gte": 0}})", false},
    {"ComparisonOnMissingFails", R"({"absent": {"$gt": 0}})", false},
    {"ComparisonAnyArrayElement", R"({"ports": {"$gt": 8}})", true},
    {"ComparisonNoArrayElement", R"({"ports": {"$gt": 9}})", false},
    {"RangeOnOneField", R"({"board.rev": {"$gt": 1, "$lt": 3}})", true},
    {"RangeOnOneFieldFails", R"({"board.rev": {"$gt": 2, "$lt": 5}})", false},
    {"RangeArraysAnyElementPerOperator", R"({"ports": {"$gt": 8, "$lt": 2}})", true},
    // $in / $nin
    {"InMatches", R"({"os": {"$in": ["iOS", "Android"]}})", true},
    {"InMismatch", R"({"os": {"$in": ["iOS", "Linux"]}})", false},
    {"InEmpty", R"({"os": {"$in": []}})", false},
    {"InNullMatchesMissing", R"({"absent": {"$in": [null, 1]}})", true},
    {"InMissingFails", R"({"absent": {"$in": [1]}})", false},
    {"InArrayAnyElement", R"({"tags": {"$in": ["can", "thread"]}})", true},
    {"InMixedNumbers", R"({"ver": {"$in": [11.0]}})", true},
    {"NinMatches", R"({"os": {"$nin": ["iOS"]}})", true},
    {"NinMismatch", R"({"os": {"$nin": ["iOS", "Android"]}})", false},
    {"NinMatchesMissing", R"({"absent": {"$nin": ["x"]}})", true},
    {"NinArrayNoElement", R"({"tags": {"$nin": ["can"]}})", true},
    {"NinArraySomeElement", R"({"tags": {"$nin": ["can", "ble"]}})", false},
    // $exists
    {"ExistsTrue", R"({"os": {"$exists": true}})", true},
    {"ExistsTrueOnNull", R"({"nothing": {"$exists": true}})", true},
    {"ExistsTrueMissing", R"({"absent": {"$exists": true}})", false},
    {"ExistsFalseMissing", R"({"absent": {"$exists": false}})", true},
    {"ExistsFalsePresent", R"({"os": {"$exists": false}})", false},
    {"ExistsNested", R"({"board.chip.flash": {"$exists": true}})", true},
    // $regex
    {"RegexMatches", R"({"model": {"$regex": "^Pixel [0-9]+$"}})", true},
    {"RegexIsUnanchored", R"({"model": {"$regex": "xel"}})", true},
    {"RegexMismatch", R"({"model": {"$regex": "^Galaxy"}})", false},
    {"RegexIsCaseSensitive", R"({"model": {"$regex": "^pixel"}})", false},
    {"RegexOptionI", R"({"model": {"$regex": "^pixel", "$options": "i"}})", true},
    {"RegexEmptyOptions", R"({"model": {"$regex": "^Pixel", "$options": ""}})", true},
    {"RegexEcmaScriptSyntax", R"({"model": {"$regex": "^\\w+\\s\\d$"}})", true},
    {"RegexOnNumberNeverMatches", R"({"ver": {"$regex": "11"}})", false},
    {"RegexOnMissingFails", R"({"absent": {"$regex": ".*"}})", false},
    {"RegexAnyArrayElement", R"({"tags": {"$regex": "^thr"}})", true},
    {"RegexNoArrayElement", R"({"tags": {"$regex": "^can"}})", false},
    {"RegexWithOtherOperator", R"({"model": {"$regex": "Pixel", "$ne": "Pixel 7"}})", false},
    // $not
    {"NotNegates", R"({"board.rev": {"$not": {"$gt": 2}}})", true},
    {"NotNegatesMatch", R"({"board.rev": {"$not": {"$gte": 2}}})", false},
    {"NotMatchesMissing", R"({"absent": {"$not": {"$gt": 2}}})", true},
    {"NotRegex", R"({"model": {"$not": {"$regex": "^Galaxy"}}})", true},
    {"NotRegexMatchFails", R"({"model": {"$not": {"$regex": "^Pixel"}}})", false},
    // $all
    {"AllElementsPresent", R"({"tags": {"$all": ["thread", "ble"]}})", true},
    {"AllOneMissing", R"({"tags": {"$all": ["ble", "can"]}})", false},
    {"AllEmptyNeverMatches", R"({"tags": {"$all": []}})", false},
    {"AllOnScalar", R"({"os": {"$all": ["Android"]}})", true},
    {"AllOnMissing", R"({"absent": {"$all": ["x"]}})", false},
    // $type
    {"TypeString", R"({"os": {"$type": "string"}})", true},
    {"TypeStringNumber", R"({"os": {"$type": 2}})", true},
    {"TypeIntOnInteger", R"({"ver": {"$type": "int"}})", true},
    {"TypeLongOnInteger", R"({"ver": {"$type": 18}})", true},
    {"TypeDoubleOnInteger", R"({"ver": {"$type": "double"}})", false},
    {"TypeDoubleOnFraction", R"({"score": {"$type": 1}})", true},
    {"TypeNumber", R"({"score": {"$type": "number"}})", true},
    {"TypeNumberOnString", R"({"version": {"$type": "number"}})", false},
    {"TypeArrayElement", R"({"ports": {"$type": "int"}})", true},
    {"TypeArray", R"({"tags": {"$type": "array"}})", true},
    {"TypeObject", R"({"board": {"$type": "object"}})", true},
    {"TypeNull", R"({"nothing": {"$type": "null"}})", true},
    {"TypeNullOnMissing", R"({"absent": {"$type": "null"}})", false},
    {"TypeBool", R"({"online": {"$type": "bool"}})", true},
    {"TypeBoolIsNotInt", R"({"online": {"$type": "int"}})", false},
    {"TypeList", R"({"os": {"$type": ["null", "string"]}})", true},
    {"TypeDateNeverInJson", R"({"version": {"$type": "date"}})", false},
    {"NotType", R"({"os": {"$not": {"$type": "string"}}})", false},
    // $mod
    {"ModMatches", R"({"ver": {"$mod": [4, 3]}})", true},
    {"ModMismatch", R"({"ver": {"$mod": [4, 0]}})", false},
    {"ModTruncatesTheValue", R"({"score": {"$mod": [2, 0]}})", true},
    {"ModArrayElement", R"({"ports": {"$mod": [4, 1]}})", true},
    {"ModOnString", R"({"version": {"$mod": [2, 0]}})", false},
    // $size with a condition on the length
    {"SizeGreaterThan", R"({"tags": {"$size": {"$gt": 1}}})", true},
    {"SizeGreaterThanFails", R"({"tags": {"$size": {"$gt": 2}}})", false},
    {"SizeInRange", R"({"ports": {"$size": {"$gte": 3, "$lt": 5}}})", true},
    {"SizeConditionOnScalar", R"({"os": {"$size": {"$gte": 0}}})", false},
    // $all with $elemMatch clauses
    {"AllElemMatchEachClause",
     R"({"usb": {"$all": [{"$elemMatch": {"hub": 1}}, {"$elemMatch": {"port": {"$gt": 5}}}]}})",
     true},
    {"AllElemMatchOneClauseUnmatched",
     R"({"usb": {"$all": [{"$elemMatch": {"hub": 1}}, {"$elemMatch": {"hub": 3}}]}})", false},
    {"AllElemMatchValues", R"({"ports": {"$all": [{"$elemMatch": {"$gt": 8}}]}})", true},
    // regular expression flags and the literal form
    {"RegexLiteral", R"({"model": {"$regex": "/^Pixel/"}})", true},
    {"RegexLiteralFlagI", R"({"model": {"$regex": "/^pixel/i"}})", true},
    {"RegexLiteralWithoutFlagIsCaseSensitive", R"({"model": {"$regex": "/^pixel/"}})", false},
    {"RegexLiteralHoldsSlashes", R"({"model": {"$regex": "/^P/x/"}})", false},
    {"RegexSlashWithoutFlagsIsPlain", R"({"model": {"$regex": "/"}})", false},
    {"RegexOptionX", R"({"model": {"$regex": "^Pixel \\  7 # the model", "$options": "x"}})", true},
    // $size
    {"SizeMatches", R"({"tags": {"$size": 2}})", true},
    {"SizeMismatch", R"({"tags": {"$size": 3}})", false},
    {"SizeZero", R"({"empty": {"$size": 0}})", true},
    {"SizeOnScalar", R"({"os": {"$size": 1}})", false},
    {"SizeOnMissing", R"({"absent": {"$size": 0}})", false},
    // $elemMatch
    {"ElemMatchValues", R"({"ports": {"$elemMatch": {"$gt": 4, "$lt": 6}}})", true},
    {"ElemMatchValuesOneElement", R"({"ports": {"$elemMatch": {"$gt": 6, "$lt": 8}}})", false},
    {"ElemMatchDocuments", R"({"usb": {"$elemMatch": {"hub": 2, "port": 7}}})", true},
    {"ElemMatchDocumentsSameElement", R"({"usb": {"$elemMatch": {"hub": 1, "port": 7}}})", false},
    {"ElemMatchDocumentsOperators", R"({"usb": {"$elemMatch": {"port": {"$gte": 7}}}})", true},
    {"ElemMatchDocumentsLogical", R"({"usb": {"$elemMatch": {"$or": [{"hub": 9}, {"port": 2}]}}})",
     true},
    {"ElemMatchOnScalar", R"({"os": {"$elemMatch": {"$eq": "Android"}}})", false},
    {"ElemMatchOnMissing", R"({"absent": {"$elemMatch": {"$exists": true}}})", false},
    // $and / $or / $nor
    {"AndAll", R"({"$and": [{"os": "Android"}, {"board.rev": 2}]})", true},
    {"AndOneFails", R"({"$and": [{"os": "Android"}, {"board.rev": 3}]})", false},
    {"OrOne", R"({"$or": [{"os": "iOS"}, {"board.rev": 2}]})", true},
    {"OrNone", R"({"$or": [{"os": "iOS"}, {"board.rev": 3}]})", false},
    {"NorNone", R"({"$nor": [{"os": "iOS"}, {"board.rev": 3}]})", true},
    {"NorOne", R"({"$nor": [{"os": "iOS"}, {"board.rev": 2}]})", false},
    {"OrWithFields", R"({"os": "Android", "$or": [{"ver": 10}, {"ver": 11}]})", true},
    {"OrWithFieldsFieldFails", R"({"os": "iOS", "$or": [{"ver": 10}, {"ver": 11}]})", false},
    {"NestedLogical", R"({"$or": [{"$and": [{"os": "Android"}, {"ver": 11}]}, {"os": "x"}]})",
     true},
    {"EmptyObjectInOr", R"({"$or": [{}]})", true},
    // key=value form
    {"PairString", "os=Android", true},
    {"PairStringMismatch", "os=iOS", false},
    {"PairSeveral", "os=Android&board.rev=2", true},
    {"PairSeveralOneFails", "os=Android&board.rev=3", false},
    {"PairNumberMatchesNumber", "ver=11", true},
    {"PairNumberMatchesString", "version=14", true},
    {"PairFloatMatchesInt", "board.rev=2.0", true},
    {"PairNumberWrong", "ver=12", false},
    {"PairTrue", "online=true", true},
    {"PairFalse", "online=false", false},
    {"PairTrueIsNotString", "os=true", false},
    {"PairNullMatchesMissing", "absent=null", true},
    {"PairNullMatchesNull", "nothing=null", true},
    {"PairContainsInArray", "tags=thread", true},
    {"PairNumberInArray", "ports=9", true},
    {"PairWithSpaces", " os = Android & ver = 11 ", true},
    {"PairValueWithSpace", "model=Pixel 7", true},
    {"PairValueWithEquals", "model=a=b", false},
    {"PairTrueAnyCase", "online=True", true},
    {"PairFalseAnyCase", "online=FALSE", false},
    {"PairTrueAnyCaseIsNotString", "os=TRUE", false},
    {"PairHexIsOnlyAString", "ver=0xB", false},
};

INSTANTIATE_TEST_SUITE_P(Operators, MatchingTest, ::testing::ValuesIn(kCases), CaseName());

TEST(Matching, PairNumberFormMatchesBothStringAndNumber) {
  const auto requirements = Requirements::parse("ver=11");
  EXPECT_TRUE(requirements.matches(Json{{"ver", 11}}));
  EXPECT_TRUE(requirements.matches(Json{{"ver", "11"}}));
  EXPECT_TRUE(requirements.matches(Json{{"ver", 11.0}}));
  EXPECT_FALSE(requirements.matches(Json{{"ver", "11.0"}}));
  EXPECT_FALSE(requirements.matches(Json::object()));
}

TEST(Matching, RegexWithCatastrophicBacktrackingDoesNotMatchAndDoesNotThrow) {
  const auto requirements = Requirements::parse(R"({"s": {"$regex": "^(a+)+$"}})");
  const Json attributes{{"s", std::string(5000, 'a') + "b"}};
  bool result = true;
  EXPECT_NO_THROW(result = requirements.matches(attributes));
  EXPECT_FALSE(result);
}

TEST(Matching, ResourceOverloadUsesAttributes) {
  const Resource resource{"dut-1", Json{{"id", "dut-1"}, {"os", "Android"}}};
  EXPECT_TRUE(Requirements::parse("os=Android").matches(resource));
  EXPECT_FALSE(Requirements::parse("os=iOS").matches(resource));
}

TEST(Matching, FindMatchesReturnsIndexesInInputOrder) {
  std::vector<Resource> list;
  for (int i = 0; i < 6; ++i) {
    const std::string id = "dut-" + std::to_string(i);
    list.push_back(Resource{id, Json{{"id", id}, {"rev", i % 3}}});
  }
  const Resources resources(std::move(list));
  EXPECT_EQ(find_matches(resources, Requirements::parse(R"({"rev": {"$gte": 1}})")),
            (std::vector<std::size_t>{1, 2, 4, 5}));
  EXPECT_EQ(find_matches(resources, Requirements::parse("rev=0")),
            (std::vector<std::size_t>{0, 3}));
  EXPECT_TRUE(find_matches(resources, Requirements::parse("rev=7")).empty());
  EXPECT_EQ(find_matches(resources, Requirements()).size(), 6u);
}

TEST(Matching, ModAtTheEdgesOfSixtyFourBits) {
  const auto mod = [](const char* requirement, const char* attributes) {
    return Requirements::parse(requirement).matches(Json::parse(attributes));
  };
  // INT64_MIN % -1 overflows in C++; mathematically it is 0.
  EXPECT_TRUE(mod(R"({"n": {"$mod": [-1, 0]}})", R"({"n": -9223372036854775808})"));
  EXPECT_TRUE(mod(R"({"n": {"$mod": [-9223372036854775808, -1]}})", R"({"n": -1})"));
  // Above INT64_MAX (unsigned): 2^64 - 1 = 3 * 6148914691236517205.
  EXPECT_TRUE(mod(R"({"n": {"$mod": [-3, 0]}})", R"({"n": 18446744073709551615})"));
  EXPECT_TRUE(mod(R"({"n": {"$mod": [10, 5]}})", R"({"n": 18446744073709551615})"));
  EXPECT_FALSE(mod(R"({"n": {"$mod": [10, -5]}})", R"({"n": 18446744073709551615})"));
  // Doubles beyond 64 bits, and values that are not numbers.
  EXPECT_TRUE(mod(R"({"n": {"$mod": [3, 1]}})", R"({"n": 1180591620717411303424.0})"));  // 2^70
  EXPECT_FALSE(mod(R"({"n": {"$mod": [3, 0]}})", R"({"n": 1180591620717411303424.0})"));
  EXPECT_TRUE(mod(R"({"n": {"$mod": [-3, -1]}})", R"({"n": -1180591620717411303424.0})"));
  EXPECT_FALSE(mod(R"({"n": {"$mod": [2, 0]}})", R"({"n": true})"));
  EXPECT_FALSE(mod(R"({"n": {"$mod": [2, 0]}})", R"({"n": "4"})"));
}

TEST(Matching, CheapClausesDecideBeforeRegexClauses) {
  // Equal results whatever order the clauses are written in; the regex one is evaluated last.
  const auto a = Requirements::parse(R"({"model": {"$regex": "^P"}, "os": "Android"})");
  const auto b = Requirements::parse(R"({"os": "Android", "model": {"$regex": "^P"}})");
  for (const auto& attributes : {device(), Json{{"os", "iOS"}, {"model", "Pixel"}},
                                 Json{{"os", "Android"}, {"model", "Galaxy"}}}) {
    EXPECT_EQ(a.matches(attributes), b.matches(attributes)) << attributes;
  }
}

}  // namespace
}  // namespace lockable

// Conformance table: each operator and form against one collection of documents with arrays,
// nested objects, missing fields, null and numbers of mixed types, with the answer MongoDB's
// query documentation gives (rows marked "family" follow the Python lockable package and its
// matcher, mongoquery, where we chose its answer; the README lists those differences). Every row
// runs through the tree matcher and the column index, on the collection and on many copies of it.
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

// d<N> is entry N.
const char* const kDocuments[] = {
    R"({"a": 1})",                                         // d0  integer
    R"({"a": 1.0})",                                       // d1  double equal to d0
    R"({"a": 2.5})",                                       // d2
    R"({"a": "1"})",                                       // d3  string, not a number
    R"({"a": null})",                                      // d4
    R"({})",                                               // d5  missing
    R"({"a": [1, 2, 3]})",                                 // d6
    R"({"a": []})",                                        // d7
    R"({"a": [[1, 2], 3]})",                               // d8  nested array
    R"({"a": {"b": 1}})",                                  // d9
    R"({"a": [{"b": 1, "c": "x"}, {"b": 2, "c": "y"}]})",  // d10 array of objects
    R"({"a": true})",                                      // d11
    R"({"a": -7})",                                        // d12
    R"({"a": "Line one\nsecond Line"})",                   // d13 two lines
    R"({"a": 18446744073709551615})",                      // d14 largest unsigned 64-bit
    R"({"a": [null, "x"]})",                               // d15
    R"({"a": {"b": null}})",                               // d16
    R"({"a": {"b": [1, 5]}})",                             // d17
};
constexpr std::size_t kCount = sizeof kDocuments / sizeof kDocuments[0];

Resources collection(std::size_t copies) {
  std::vector<Resource> list;
  for (std::size_t copy = 0; copy < copies; ++copy) {
    for (std::size_t i = 0; i < kCount; ++i) {
      auto attributes = Json::parse(kDocuments[i]);
      const std::string id = "d" + std::to_string(i) + "-" + std::to_string(copy);
      attributes["id"] = id;
      list.push_back({id, std::move(attributes)});
    }
  }
  return Resources(std::move(list));
}

struct ConformanceCase {
  const char* name;
  const char* query;                  // either text form
  std::vector<std::size_t> expected;  // documents (dN) that match
};

std::ostream& operator<<(std::ostream& out, const ConformanceCase& c) { return out << c.query; }

class Conformance : public ::testing::TestWithParam<ConformanceCase> {};

TEST_P(Conformance, TreeMatcherAndIndexGiveTheDocumentedAnswer) {
  const auto& c = GetParam();
  const auto requirements = Requirements::parse(c.query);
  const auto once = collection(1);
  EXPECT_EQ(detail::scan_matches(once, requirements), c.expected) << "tree matcher";
  EXPECT_EQ(detail::indexed_matches(once, requirements), c.expected) << "column index";
  // Many copies: find_matches takes the index, and values repeat across rows.
  constexpr std::size_t kCopies = 8;
  const auto many = collection(kCopies);
  std::vector<std::size_t> expected_many;
  for (std::size_t copy = 0; copy < kCopies; ++copy) {
    for (const auto doc : c.expected) expected_many.push_back(copy * kCount + doc);
  }
  EXPECT_EQ(find_matches(many, requirements), expected_many) << "find_matches (indexed)";
  EXPECT_EQ(detail::scan_matches(many, requirements), expected_many) << "tree matcher, copies";
}

using V = std::vector<std::size_t>;

const ConformanceCase kCases[] = {
    // Equality: numbers compare by value across integer and double; a scalar matches an array
    // holding it, but not one nested deeper; an array matches an equal array or element.
    {"EqNumber", R"({"a": 1})", V{0, 1, 6}},
    {"EqDoubleFindsInteger", R"({"a": 1.0})", V{0, 1, 6}},
    {"EqNegativeDouble", R"({"a": -7.0})", V{12}},
    {"EqString", R"({"a": "1"})", V{3}},
    {"EqBool", R"({"a": true})", V{11}},
    {"EqLargeUnsigned", R"({"a": 18446744073709551615})", V{14}},
    {"EqNullIsNullOrMissing", R"({"a": null})", V{4, 5, 15}},
    {"EqWholeArray", R"({"a": [1, 2, 3]})", V{6}},
    {"EqArrayElementThatIsAnArray", R"({"a": [1, 2]})", V{8}},
    {"EqExplicit", R"({"a": {"$eq": 1}})", V{0, 1, 6}},
    {"EqExplicitNull", R"({"a": {"$eq": null}})", V{4, 5, 15}},
    // family: a nested object matches part of a sub-object (mongoquery), where MongoDB wants
    // the whole embedded document.
    {"NestedObjectIsPartial", R"({"a": {"b": 1}})", V{9, 10, 17}},
    {"DottedPath", R"({"a.b": 1})", V{9, 10, 17}},
    {"DottedPathNull", R"({"a.b": null})", V{0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16}},
    {"DottedPathIndex", R"({"a.0": 1})", V{6, 8}},
    {"DottedPathIndexThenField", R"({"a.1.c": "y"})", V{10}},
    {"DottedPathComparison", R"({"a.b": {"$gt": 1}})", V{10, 17}},
    // family: {} asks for an object (MongoDB: equal to an empty document).
    {"EmptyObjectMeansAnObject", R"({"a": {}})", V{9, 16, 17}},
    // $ne / $nin: documents without a matching value, missing ones included.
    {"Ne", R"({"a": {"$ne": 1}})", V{2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
    {"NeNull", R"({"a": {"$ne": null}})", V{0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17}},
    {"Nin", R"({"a": {"$nin": [1, null]}})", V{2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 16, 17}},
    {"In", R"({"a": {"$in": [1, "x"]}})", V{0, 1, 6, 15}},
    {"InNull", R"({"a": {"$in": [null]}})", V{4, 5, 15}},
    {"InEmpty", R"({"a": {"$in": []}})", V{}},
    // Comparisons: only within numbers or within strings (MongoDB's type bracketing), any array
    // element may satisfy each bound.
    {"Gt", R"({"a": {"$gt": 1}})", V{2, 6, 8, 14}},
    {"Gte", R"({"a": {"$gte": 1}})", V{0, 1, 2, 6, 8, 14}},
    {"Lt", R"({"a": {"$lt": 1}})", V{12}},
    {"Lte", R"({"a": {"$lte": 1}})", V{0, 1, 6, 12}},
    {"GtDoubleAgainstLargeUnsigned", R"({"a": {"$gt": 1e19}})", V{14}},
    {"GtString", R"({"a": {"$gt": "1"}})", V{13, 15}},
    {"RangeOnArrayEachBoundAnyElement", R"({"a": {"$gt": 1, "$lt": 2}})", V{6}},
    {"RangeOnArrayTwoElements", R"({"a": {"$gt": 2, "$lt": 3}})", V{2, 6}},
    {"NotGt", R"({"a": {"$not": {"$gt": 1}}})", V{0, 1, 3, 4, 5, 7, 9, 10, 11, 12, 13, 15, 16, 17}},
    // $exists
    {"ExistsTrue", R"({"a": {"$exists": true}})",
     V{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}},
    {"ExistsFalse", R"({"a": {"$exists": false}})", V{5}},
    {"ExistsDotted", R"({"a.b": {"$exists": true}})", V{9, 10, 16, 17}},
    // $type: names, numbers, "number", lists; an array matches "array" and its elements' types.
    // JSON integers have no width: "int" and "long" both take any integer.
    {"TypeNumber", R"({"a": {"$type": "number"}})", V{0, 1, 2, 6, 8, 12, 14}},
    {"TypeInt", R"({"a": {"$type": "int"}})", V{0, 6, 8, 12, 14}},
    {"TypeLongByNumber", R"({"a": {"$type": 18}})", V{0, 6, 8, 12, 14}},
    {"TypeDouble", R"({"a": {"$type": "double"}})", V{1, 2}},
    {"TypeDoubleNumberWrittenAsDouble", R"({"a": {"$type": 1.0}})", V{1, 2}},
    {"TypeString", R"({"a": {"$type": 2}})", V{3, 13, 15}},
    {"TypeNull", R"({"a": {"$type": "null"}})", V{4, 15}},
    {"TypeArray", R"({"a": {"$type": "array"}})", V{6, 7, 8, 10, 15}},
    {"TypeObject", R"({"a": {"$type": "object"}})", V{9, 10, 16, 17}},
    {"TypeBool", R"({"a": {"$type": "bool"}})", V{11}},
    {"TypeList", R"({"a": {"$type": ["string", "null"]}})", V{3, 4, 13, 15}},
    {"TypeNotInJson", R"({"a": {"$type": "date"}})", V{}},
    {"TypeDotted", R"({"a.b": {"$type": "null"}})", V{16}},
    // $mod: the value truncated toward zero; the remainder takes the value's sign.
    {"ModOdd", R"({"a": {"$mod": [2, 1]}})", V{0, 1, 6, 8, 14}},
    {"ModNegativeRemainder", R"({"a": {"$mod": [2, -1]}})", V{12}},
    {"ModDoubleTruncated", R"({"a": {"$mod": [2, 0]}})", V{2, 6}},
    {"ModDoubleArguments", R"({"a": {"$mod": [2.9, 0.5]}})", V{2, 6}},
    {"ModNegativeDivisor", R"({"a": {"$mod": [-3, -1]}})", V{12}},
    // $size: arrays only; mongoquery's condition on the length.
    {"Size", R"({"a": {"$size": 3}})", V{6}},
    {"SizeZero", R"({"a": {"$size": 0}})", V{7}},
    {"SizeTwo", R"({"a": {"$size": 2}})", V{8, 10, 15}},
    {"SizeDotted", R"({"a.b": {"$size": 2}})", V{17}},
    {"SizeGreaterThan", R"({"a": {"$size": {"$gt": 2}}})", V{6}},
    {"SizeLessThan", R"({"a": {"$size": {"$lt": 1}}})", V{7}},
    {"SizeAtLeast", R"({"a": {"$size": {"$gte": 2}}})", V{6, 8, 10, 15}},
    {"SizeNotTwo", R"({"a": {"$size": {"$ne": 2}}})", V{6, 7}},
    // $all: each value as an equality; or each $elemMatch clause met by some element.
    {"All", R"({"a": {"$all": [1, 2]}})", V{6}},
    {"AllArrayValue", R"({"a": {"$all": [[1, 2]]}})", V{8}},
    {"AllOnScalar", R"({"a": {"$all": [1]}})", V{0, 1, 6}},
    {"AllEmpty", R"({"a": {"$all": []}})", V{}},
    {"AllElemMatch", R"({"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"c": "y"}}]}})",
     V{10}},
    {"AllElemMatchOneElementForBoth", R"({"a": {"$all": [{"$elemMatch": {"b": 1, "c": "y"}}]}})",
     V{}},
    {"AllElemMatchValues",
     R"({"a": {"$all": [{"$elemMatch": {"$gt": 2}}, {"$elemMatch": {"$lt": 2}}]}})", V{6}},
    // $elemMatch: one element meets every condition; each element is a single value (an
    // element [1, 2] is not greater than 1).
    {"ElemMatchValue", R"({"a": {"$elemMatch": {"$gt": 2}}})", V{6, 8}},
    {"ElemMatchOneElementForBothBounds", R"({"a": {"$elemMatch": {"$gte": 1, "$lte": 1}}})", V{6}},
    {"ElemMatchEqualityIsPerElement", R"({"a": {"$elemMatch": {"$eq": 2}}})", V{6}},
    {"ElemMatchDocument", R"({"a": {"$elemMatch": {"b": 2, "c": "y"}}})", V{10}},
    {"ElemMatchDocumentAcrossElements", R"({"a": {"$elemMatch": {"b": 1, "c": "y"}}})", V{}},
    {"ElemMatchOnObject", R"({"a": {"$elemMatch": {"b": 1}}})", V{10}},
    {"ElemMatchNested", R"({"a": {"$elemMatch": {"$elemMatch": {"$gt": 1}}}})", V{8}},
    {"ElemMatchSize", R"({"a": {"$elemMatch": {"$size": 2}}})", V{8}},
    {"ElemMatchType", R"({"a": {"$elemMatch": {"$type": "int"}}})", V{6, 8}},
    // $regex: strings only, any array element; ^ $ and . as PCRE without m and s.
    {"Regex", R"({"a": {"$regex": "1"}})", V{3}},
    {"RegexArrayElement", R"({"a": {"$regex": "^x$"}})", V{15}},
    {"RegexCaretIsStartOfText", R"({"a": {"$regex": "^second"}})", V{}},
    {"RegexOptionM", R"({"a": {"$regex": "^second", "$options": "m"}})", V{13}},
    {"RegexDollarIsEndOfText", R"({"a": {"$regex": "one$"}})", V{}},
    {"RegexDollarOptionM", R"({"a": {"$regex": "one$", "$options": "m"}})", V{13}},
    {"RegexDotSkipsLineBreak", R"({"a": {"$regex": "one.second"}})", V{}},
    {"RegexOptionS", R"({"a": {"$regex": "one.second", "$options": "s"}})", V{13}},
    {"RegexOptionI", R"({"a": {"$regex": "^LINE", "$options": "i"}})", V{13}},
    {"RegexOptionX", R"({"a": {"$regex": "^ L ine \\  one  # a comment", "$options": "x"}})",
     V{13}},
    {"RegexOptionsCombined", R"({"a": {"$regex": "^SECOND.LINE$", "$options": "mis"}})", V{13}},
    {"RegexLiteral", R"({"a": {"$regex": "/^second/m"}})", V{13}},
    {"RegexLiteralFlagsCombined", R"({"a": {"$regex": "/ONE.SECOND/si"}})", V{13}},
    {"RegexLiteralNoFlags", R"({"a": {"$regex": "/Line$/"}})", V{13}},
    {"RegexLiteralWithOptions", R"({"a": {"$regex": "/^line/", "$options": "i"}})", V{13}},
    {"NotRegex", R"({"a": {"$not": {"$regex": "^L"}}})",
     V{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17}},
    // Logical operators
    {"Or", R"({"$or": [{"a": 1}, {"a": "1"}]})", V{0, 1, 3, 6}},
    {"And", R"({"$and": [{"a": {"$gt": 0}}, {"a": {"$lt": 2}}]})", V{0, 1, 6}},
    {"Nor", R"({"$nor": [{"a": {"$exists": true}}]})", V{5}},
    {"NorTwo", R"({"$nor": [{"a": {"$type": "number"}}, {"a": {"$type": "string"}}]})",
     V{4, 5, 7, 9, 10, 11, 16, 17}},
    // key=value: numbers match as string and number; true/false in any case; null.
    {"PairNumber", "a=1", V{0, 1, 3, 6}},
    {"PairDouble", "a=2.5", V{2}},
    {"PairTrue", "a=True", V{11}},
    {"PairNull", "a=null", V{4, 5, 15}},
    {"PairDotted", "a.c=x", V{10}},
};

INSTANTIATE_TEST_SUITE_P(Table, Conformance, ::testing::ValuesIn(kCases), CaseName());

}  // namespace
}  // namespace lockable

namespace lockable {
namespace {

// PCRE (MongoDB) and Python: without m, $ matches at the end and before a final line break; a $
// that is escaped, in a class or in \Q...\E is a dollar sign.
TEST(ConformanceRegex, DollarMatchesBeforeAFinalLineBreakAsInPcre) {
  std::vector<Resource> list;
  const char* const kTexts[] = {"b\n", "b", "b\nc", "b\n\n", "a$", "x]$"};
  for (const char* text : kTexts) {
    list.push_back({"r" + std::to_string(list.size()), Json{{"t", text}}});
  }
  const Resources resources(std::move(list));
  const std::pair<const char*, std::vector<std::size_t>> kDollarCases[] = {
      {R"({"t": {"$regex": "b$"}})", {0, 1}},
      {R"({"t": {"$regex": "/b$/"}})", {0, 1}},
      {R"({"t": {"$regex": "b$", "$options": "m"}})", {0, 1, 2, 3}},
      {R"({"t": {"$regex": "\\$"}})", {4, 5}},
      {R"({"t": {"$regex": "a[$]"}})", {4}},
      {R"({"t": {"$regex": "[]$]$"}})", {4, 5}},
      {R"({"t": {"$regex": "[^]$]$"}})", {0, 1, 2, 3}},
      {R"({"t": {"$regex": "\\Q]$\\E"}})", {5}},
      {R"({"t": {"$regex": "[[:alpha:]]$"}})", {0, 1, 2}},
      {R"({"t": {"$regex": "b(?#$)$"}})", {0, 1}},
      {R"({"t": {"$regex": "b $ # end", "$options": "x"}})", {0, 1}},
  };
  for (const auto& [query, expected] : kDollarCases) {
    const auto requirements = Requirements::parse(query);
    EXPECT_EQ(detail::scan_matches(resources, requirements), expected) << query;
    EXPECT_EQ(detail::indexed_matches(resources, requirements), expected) << query;
  }
}

}  // namespace
}  // namespace lockable

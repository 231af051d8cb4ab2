#pragma once

// Private to the library: the compiled form of a Requirements query. Built once by
// `compile_query` (which does every check, so matching never throws) and then shared, immutable,
// between copies of a Requirements.
//
// Compiling lives in query_compile.cpp, matching in query_match.cpp; the JSON text helpers both
// use (dump, shown, UTF-8 checks, parse_json) are in json_text.hpp.

#include <lockable/resource.hpp>

#include <boost/regex.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable::detail {

/// The JSON types `$type` tells apart, as bits of Node::types. BSON types that JSON cannot hold
/// (dates, object ids, ...) have no bit: they are accepted and match nothing.
enum JsonType : std::uint32_t {
  kTypeDouble = 1U << 0,   // a number written with a fraction or exponent (2.0, 1e3)
  kTypeInteger = 1U << 1,  // "int" and "long": JSON integers have no width
  kTypeString = 1U << 2,
  kTypeObject = 1U << 3,
  kTypeArray = 1U << 4,
  kTypeBool = 1U << 5,
  kTypeNull = 1U << 6,
};

/// Deepest JSON nesting a requirement may have; deeper ones are rejected when parsed so that
/// neither compiling nor matching can exhaust the stack.
inline constexpr int kMaxQueryDepth = 64;
/// Longest `$regex` pattern accepted, in bytes.
inline constexpr std::size_t kMaxRegexLength = 1000;

/// One node of a compiled query. Document-level kinds (kAnd..kTrue) test a JSON object; the
/// value-level kinds test the values found at a field path.
struct Node {
  enum class Kind {
    // document level
    kAnd,
    kOr,
    kNor,
    kField,  // children[0] (value level) applied to the values at `path`
    kTrue,
    // value level
    kAllOf,  // every child holds (the operators of one `{"$gt": 1, "$lt": 5}` object)
    kEq,     // some value equals one of `values` ($eq, $in, implicit equality)
    kNotEq,  // no value equals any of `values` ($ne, $nin)
    kGt,
    kGte,
    kLt,
    kLte,
    kExists,
    kRegex,
    kNot,
    kAll,
    kSize,
    kSizeMatch,       // children[0] (value level) applied to the length of each array value
    kType,            // some value (or array element) has one of the JSON types in `types`
    kMod,             // some numeric value, truncated to an integer, % divisor == remainder
    kElemMatchValue,  // children[0] is value level, applied to each element
    kElemMatchDoc,    // children[0] is document level, applied to each element
    kIsObject,        // `{"board": {}}`: the field holds an object
  };

  Kind kind = Kind::kTrue;
  std::vector<std::string> path;  // kField
  std::vector<Json> values;       // kEq, kNotEq, kAll; comparisons use values[0]
  bool flag = false;              // kExists
  std::size_t size = 0;           // kSize
  std::uint32_t types = 0;        // kType: JsonType bits
  std::int64_t divisor = 1;       // kMod
  std::int64_t remainder = 0;     // kMod
  std::shared_ptr<const boost::regex> regex;
  /// kRegex: the pattern for texts that end in a line break, where PCRE's $ (without m) also
  /// matches before that break; null when the pattern has no such $.
  std::shared_ptr<const boost::regex> regex_final_break;
  std::vector<Node> children;
  /// True when this node or a child runs a regex: such nodes are evaluated last in a conjunction.
  bool expensive = false;
};

/// One top-level condition, kept in the order reasons are reported.
struct Clause {
  enum class Kind { kField, kLogical, kImplicitOnline, kImplicitHostname };
  Kind kind = Kind::kField;
  /// The top-level key of the user's JSON this clause came from ("online", "board", "$or").
  std::string top_key;
  /// For field clauses: the dotted path, shown in reasons.
  std::string label;
  /// What reasons show as "required ...": the user's operand.
  Json required;
  Node node;  // document level
};

/// A compiled requirement: the conjunction of `clauses`.
struct Query {
  std::vector<Clause> clauses;
  /// Indexes into `clauses`, cheap ones first; the order `matches` evaluates them in.
  std::vector<std::size_t> eval_order;

  bool matches(const Json& attributes) const;
  /// The first failing clause (in `clauses` order) described in one short phrase.
  std::optional<std::string> mismatch_reason(const Json& attributes) const;
  /// Recomputes `eval_order` after `clauses` changed.
  void order_clauses();
};

/// Whether a value-level node holds for the values found at its path, when that path led to
/// `value` (nullptr: nothing there). The same answer Query::matches would give.
bool matches_value(const Node& value_node, const Json* value);

/// Whether a document-level node holds for `doc`.
bool matches_document(const Node& document_node, const Json& doc);

/// Compiles a JSON object query. Throws RequirementsError naming the key and the fix.
Query compile_query(const Json& query);

/// Compiles the `key=value` form: `pairs` are (key, raw value text) in the order given;
/// `true`/`false` (any letter case) and `null` are JSON values, any other text matches itself as
/// a string and the number it reads as. Throws RequirementsError.
Query compile_pairs(const std::vector<std::pair<std::string, std::string>>& pairs);

/// The JSON value a key=value value stands for in `Requirements::json()`: true/false (any letter
/// case), null, or the text as a string.
Json pair_value_json(const std::string& text);

/// Why `key` (a top-level or nested JSON key, or a key=value key) is not a usable attribute
/// path, or "" when it is fine.
std::string invalid_key_reason(std::string_view key);

}  // namespace lockable::detail

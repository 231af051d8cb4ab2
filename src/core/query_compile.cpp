// Compiling a requirement: the JSON object form and the key=value form into a Query (query.hpp).
// Every check happens here, with a RequirementsError naming the key and the fix, so that matching
// (query_match.cpp) never throws.

#include "core/json_text.hpp"
#include "core/query.hpp"

#include <lockable/error.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

namespace lockable::detail {
namespace {

constexpr const char* kValueOperators =
    "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $exists, $type, $mod, $regex (with $options), "
    "$not, $all, $size, $elemMatch";

constexpr const char* kRegexFlags =
    "i (ignore case), m (^ and $ at line breaks), s (. matches a line break), x (ignore blanks "
    "and # comments)";

// MongoDB's $type names and numbers (BSON types). Types JSON cannot hold map to no bit, so they
// are accepted, as MongoDB accepts them, and match nothing.
struct TypeName {
  const char* alias;
  int number;
  std::uint32_t bits;
};
constexpr std::array<TypeName, 21> kTypeNames = {{
    {"double", 1, kTypeDouble}, {"string", 2, kTypeString}, {"object", 3, kTypeObject},
    {"array", 4, kTypeArray},   {"binData", 5, 0},          {"undefined", 6, 0},
    {"objectId", 7, 0},         {"bool", 8, kTypeBool},     {"date", 9, 0},
    {"null", 10, kTypeNull},    {"regex", 11, 0},           {"dbPointer", 12, 0},
    {"javascript", 13, 0},      {"symbol", 14, 0},          {"javascriptWithScope", 15, 0},
    {"int", 16, kTypeInteger},  {"timestamp", 17, 0},       {"long", 18, kTypeInteger},
    {"decimal", 19, 0},         {"minKey", -1, 0},          {"maxKey", 127, 0},
}};

[[noreturn]] void fail(const std::string& message) {
  throw RequirementsError("requirements: " + message);
}

bool is_logical(const std::string& key) { return key == "$and" || key == "$or" || key == "$nor"; }

std::vector<std::string> split_path(std::string_view key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const auto dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join_path(const std::vector<std::string>& parts) {
  std::string text;
  for (const auto& part : parts) {
    if (!text.empty()) text += '.';
    text += part;
  }
  return text;
}

// Bounded recursion: stops descending once the limit is passed, so it is safe on any input.
bool deeper_than(const Json& value, int levels) {
  if (!value.is_structured()) return false;
  if (levels == 0) return true;
  for (const auto& child : value) {
    if (deeper_than(child, levels - 1)) return true;
  }
  return false;
}

void sort_cheap_first(std::vector<Node>& nodes) {
  std::stable_partition(nodes.begin(), nodes.end(), [](const Node& n) { return !n.expensive; });
}

Node make_group(Node::Kind kind, std::vector<Node> children) {
  Node node;
  node.kind = kind;
  sort_cheap_first(children);
  node.expensive = std::any_of(children.begin(), children.end(),
                               [](const Node& child) { return child.expensive; });
  node.children = std::move(children);
  return node;
}

Node make_field(std::vector<std::string> path, Node condition) {
  Node node;
  node.kind = Node::Kind::kField;
  node.path = std::move(path);
  node.expensive = condition.expensive;
  node.children.push_back(std::move(condition));
  return node;
}

Node make_values(Node::Kind kind, std::vector<Json> values) {
  Node node;
  node.kind = kind;
  node.values = std::move(values);
  return node;
}

class Compiler {
 public:
  // Appends one clause per leaf condition of `doc` (nested plain objects are flattened into
  // dotted paths below `prefix`).
  void append_clauses(const Json& doc, const std::vector<std::string>& prefix,
                      const std::string& top_key, std::vector<Clause>& out) {
    for (const auto& [key, value] : doc.items()) {
      const std::string& this_top = prefix.empty() ? key : top_key;
      if (is_operator(key)) {
        if (!is_logical(key)) reject_document_operator(key, join_path(prefix));
        Clause clause;
        clause.kind = Clause::Kind::kLogical;
        clause.top_key = this_top;
        clause.required = value;
        clause.node = compile_logical(key, value);
        out.push_back(std::move(clause));
        continue;
      }
      const auto reason = invalid_key_reason(key);
      if (!reason.empty()) {
        fail("key " + in_quotes(key) + under(join_path(prefix)) + " " + reason +
             "; write attribute paths like \"board.rev\"");
      }
      auto path = prefix;
      for (auto& part : split_path(key)) path.push_back(std::move(part));
      const auto label = join_path(path);
      if (value.is_object() && !value.empty() && !has_operator_keys(value, label)) {
        append_clauses(value, path, this_top, out);
        continue;
      }
      Clause clause;
      clause.kind = Clause::Kind::kField;
      clause.top_key = this_top;
      clause.label = label;
      clause.required = value;
      clause.node = make_field(std::move(path), compile_condition(value, label));
      out.push_back(std::move(clause));
    }
  }

  // A query document (the elements of $and/$or/$nor, an $elemMatch on objects).
  Node compile_document(const Json& doc) {
    std::vector<Clause> clauses;
    append_clauses(doc, {}, "", clauses);
    std::vector<Node> nodes;
    nodes.reserve(clauses.size());
    for (auto& clause : clauses) nodes.push_back(std::move(clause.node));
    return make_group(Node::Kind::kAnd, std::move(nodes));
  }

  // The condition on a field: an operator object, `{}` (an object), or a value to equal.
  Node compile_condition(const Json& value, const std::string& label) {
    if (value.is_object() && value.empty()) {
      Node node;
      node.kind = Node::Kind::kIsObject;
      return node;
    }
    if (value.is_object()) return compile_operators(value, label);
    return make_values(Node::Kind::kEq, {value});
  }

 private:
  // True when `object`'s keys are operators; throws when operators and fields are mixed.
  static bool has_operator_keys(const Json& object, const std::string& label) {
    std::string an_operator;
    std::string a_field;
    for (const auto& [key, value] : object.items()) {
      (is_operator(key) ? an_operator : a_field) = key;
    }
    if (!an_operator.empty() && !a_field.empty()) {
      fail(in_quotes(label) + " mixes an operator (" + an_operator + ") with a field (" + a_field +
           "); put the field in its own key, e.g. {" + in_quotes(label + "." + a_field) + ": ...}");
    }
    return !an_operator.empty();
  }

  [[noreturn]] static void reject_document_operator(const std::string& key,
                                                    const std::string& label) {
    if (key == "$options") fail("$options" + under(label) + " needs a $regex next to it");
    static const std::array<const char*, 16> value_ops = {
        "$eq",     "$ne",   "$gt",  "$gte",   "$lt",  "$lte", "$in",   "$nin",
        "$exists", "$type", "$mod", "$regex", "$not", "$all", "$size", "$elemMatch"};
    for (const char* op : value_ops) {
      if (key == op) {
        fail("operator " + key + under(label) + " must be applied to a field, e.g. " +
             "{\"version\": {\"" + key + "\": ...}}");
      }
    }
    fail("unknown operator " + in_quotes(key) + under(label) +
         "; at this level use $and, $or, $nor or a field name");
  }

  Node compile_logical(const std::string& op, const Json& operand) {
    if (!operand.is_array() || operand.empty()) {
      fail(op + " needs a non-empty array of query objects, found " + shown(operand) +
           "; write e.g. {\"" + op + "\": [{\"os\": \"Android\"}, {\"os\": \"iOS\"}]}");
    }
    std::vector<Node> children;
    for (std::size_t i = 0; i < operand.size(); ++i) {
      const auto& element = operand[i];
      if (!element.is_object()) {
        fail(op + " element " + std::to_string(i) + " must be a query object, found " +
             shown(element));
      }
      children.push_back(compile_document(element));
    }
    const auto kind = op == "$and"  ? Node::Kind::kAnd
                      : op == "$or" ? Node::Kind::kOr
                                    : Node::Kind::kNor;
    return make_group(kind, std::move(children));
  }

  Node compile_operators(const Json& object, const std::string& label) {
    std::vector<Node> children;
    const auto options = object.find("$options");
    if (options != object.end() && !object.contains("$regex")) {
      fail("$options" + under(label) + " needs a $regex next to it");
    }
    for (const auto& [key, operand] : object.items()) {
      if (key == "$options") continue;
      children.push_back(compile_operator(key, operand, label, object));
    }
    if (children.size() == 1) return std::move(children.front());
    return make_group(Node::Kind::kAllOf, std::move(children));
  }

  Node compile_operator(const std::string& op, const Json& operand, const std::string& label,
                        const Json& siblings) {
    const auto need = [&](const std::string& what) {
      fail(op + under(label) + " needs " + what + ", found " + shown(operand));
    };
    if (op == "$eq") return make_values(Node::Kind::kEq, {operand});
    if (op == "$ne") return make_values(Node::Kind::kNotEq, {operand});
    if (op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
      if (!operand.is_number() && !operand.is_string()) need("a number or a string");
      const auto kind = op == "$gt"    ? Node::Kind::kGt
                        : op == "$gte" ? Node::Kind::kGte
                        : op == "$lt"  ? Node::Kind::kLt
                                       : Node::Kind::kLte;
      return make_values(kind, {operand});
    }
    if (op == "$all" && operand.is_array()) return compile_all(operand, label);
    if (op == "$in" || op == "$nin" || op == "$all") {
      if (!operand.is_array()) need("an array, e.g. [\"a\", \"b\"]");
      std::vector<Json> values(operand.begin(), operand.end());
      const auto kind = op == "$in"    ? Node::Kind::kEq
                        : op == "$nin" ? Node::Kind::kNotEq
                                       : Node::Kind::kAll;
      return make_values(kind, std::move(values));
    }
    if (op == "$exists") {
      if (!operand.is_boolean()) need("true or false");
      Node node;
      node.kind = Node::Kind::kExists;
      node.flag = operand.get<bool>();
      return node;
    }
    if (op == "$type") return compile_type(operand, label);
    if (op == "$mod") return compile_mod(operand, label);
    if (op == "$size" && operand.is_object()) {
      // mongoquery's extension: a condition on the length, {"$size": {"$gt": 2}}.
      if (operand.empty() || !has_operator_keys(operand, label)) {
        need("a non-negative integer or an object of operators on the length, e.g. {\"$gt\": 2}");
      }
      Node node;
      node.kind = Node::Kind::kSizeMatch;
      node.children.push_back(compile_operators(operand, label));
      node.expensive = node.children.front().expensive;
      return node;
    }
    if (op == "$size") {
      const bool ok = operand.is_number_unsigned() ||
                      (operand.is_number_integer() && operand.get<std::int64_t>() >= 0);
      if (!ok) need("a non-negative integer (or a condition on the length, e.g. {\"$gt\": 2})");
      Node node;
      node.kind = Node::Kind::kSize;
      node.size = operand.get<std::size_t>();
      return node;
    }
    if (op == "$regex") return compile_regex(operand, label, siblings);
    if (op == "$not") {
      if (!operand.is_object() || operand.empty() || !has_operator_keys(operand, label)) {
        need("an object of operators, e.g. {\"$regex\": \"^Pixel\"}");
      }
      Node node;
      node.kind = Node::Kind::kNot;
      node.children.push_back(compile_operators(operand, label));
      node.expensive = node.children.front().expensive;
      return node;
    }
    if (op == "$elemMatch") {
      if (!operand.is_object()) need("an object, e.g. {\"$gte\": 2} or {\"name\": \"x\"}");
      Node node;
      // Value operators ($gte...) test the elements themselves; fields and $and/$or/$nor test
      // the fields of object elements.
      bool on_values = false;
      for (const auto& [key, value] : operand.items()) {
        if (is_operator(key) && !is_logical(key)) on_values = true;
      }
      if (on_values && has_operator_keys(operand, label)) {
        node.kind = Node::Kind::kElemMatchValue;
        node.children.push_back(compile_operators(operand, label));
      } else {
        node.kind = Node::Kind::kElemMatchDoc;
        node.children.push_back(compile_document(operand));
      }
      node.expensive = node.children.front().expensive;
      return node;
    }
    if (is_logical(op)) {
      fail(op + under(label) + " must be at the top level of a query, e.g. {\"" + op +
           "\": [{\"os\": \"Android\"}, ...]}");
    }
    fail("unknown operator " + in_quotes(op) + under(label) + "; use one of " + kValueOperators);
  }

  // $all of $elemMatch clauses: each clause is matched by some element (MongoDB). Otherwise
  // $all lists values, which may not be operator objects (MongoDB: "no $ expressions in $all").
  Node compile_all(const Json& operand, const std::string& label) {
    const auto is_elem_match = [](const Json& element) {
      return element.is_object() && element.size() == 1 && element.contains("$elemMatch");
    };
    const bool any_elem_match = std::any_of(operand.begin(), operand.end(), is_elem_match);
    std::vector<Node> clauses;
    for (std::size_t i = 0; i < operand.size(); ++i) {
      const auto& element = operand[i];
      if (any_elem_match && !is_elem_match(element)) {
        fail("$all" + under(label) + " mixes $elemMatch clauses with other values (element " +
             std::to_string(i) + " is " + shown(element) +
             "); write every element as {\"$elemMatch\": {...}}, or list plain values only");
      }
      if (!any_elem_match && element.is_object()) {
        for (const auto& [key, value] : element.items()) {
          if (is_operator(key)) {
            fail("$all" + under(label) + " element " + std::to_string(i) + " uses the operator " +
                 key + "; $all takes values or {\"$elemMatch\": {...}} clauses only");
          }
        }
      }
      if (any_elem_match) {
        clauses.push_back(compile_operator("$elemMatch", element.at("$elemMatch"), label, element));
      }
    }
    if (!any_elem_match) {
      return make_values(Node::Kind::kAll, std::vector<Json>(operand.begin(), operand.end()));
    }
    return make_group(Node::Kind::kAllOf, std::move(clauses));
  }

  static std::uint32_t type_bits(const Json& type, const std::string& label) {
    const auto unknown = [&]() {
      fail("$type" + under(label) + " has the unknown type " + shown(type) +
           "; use a BSON type number (1 double, 2 string, 3 object, 4 array, 8 bool, 10 null, "
           "16 int, 18 long, ...) or a name such as \"string\", \"number\", \"array\"");
    };
    if (type.is_string()) {
      const auto& name = type.get_ref<const std::string&>();
      if (name == "number") return kTypeDouble | kTypeInteger;
      for (const auto& entry : kTypeNames) {
        if (name == entry.alias) return entry.bits;
      }
      unknown();
    }
    if (type.is_number()) {
      // MongoDB takes a type number written as a double (2.0) as well.
      const double number = type.get<double>();
      if (std::trunc(number) == number) {
        for (const auto& entry : kTypeNames) {
          if (number == entry.number) return entry.bits;
        }
      }
      unknown();
    }
    fail("$type" + under(label) +
         " needs a type name, a BSON type number or an array of them, e.g. \"string\" or "
         "[\"int\", \"null\"], found " +
         shown(type));
  }

  static Node compile_type(const Json& operand, const std::string& label) {
    Node node;
    node.kind = Node::Kind::kType;
    if (operand.is_array()) {
      if (operand.empty()) {
        fail("$type" + under(label) + " needs at least one type, found []");
      }
      for (const auto& type : operand) node.types |= type_bits(type, label);
    } else {
      node.types = type_bits(operand, label);
    }
    return node;
  }

  // [divisor, remainder], each truncated toward zero, with MongoDB's checks and messages.
  static Node compile_mod(const Json& operand, const std::string& label) {
    const auto malformed = [&](const std::string& why) {
      fail("$mod" + under(label) + ": " + why + ", found " + shown(operand) +
           "; write [divisor, remainder], e.g. {\"$mod\": [4, 0]}");
    };
    if (!operand.is_array()) malformed("malformed mod, needs to be an array");
    if (operand.size() < 2) malformed("malformed mod, not enough elements");
    if (operand.size() > 2) malformed("malformed mod, too many elements");
    const auto integer = [&](const Json& value, const char* what) -> std::int64_t {
      if (!value.is_number()) malformed(std::string("malformed mod, ") + what + " not a number");
      if (value.is_number_unsigned()) {
        if (value.get<std::uint64_t>() >
            static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
          malformed(std::string("malformed mod, ") + what + " value is out of the 64-bit range");
        }
        return value.get<std::int64_t>();
      }
      if (value.is_number_integer()) return value.get<std::int64_t>();
      const double number = std::trunc(value.get<double>());
      // 2^63 is exactly representable; anything at or above it does not fit.
      if (!std::isfinite(number) || number < -9223372036854775808.0 ||
          number >= 9223372036854775808.0) {
        malformed(std::string("malformed mod, ") + what + " value is invalid (" +
                  (std::isfinite(number) ? "out of the 64-bit range" : "not finite") + ")");
      }
      return static_cast<std::int64_t>(number);
    };
    Node node;
    node.kind = Node::Kind::kMod;
    node.divisor = integer(operand[0], "divisor");
    node.remainder = integer(operand[1], "remainder");
    if (node.divisor == 0) malformed("divisor cannot be 0");
    return node;
  }

  // A pattern, or the family's literal form "/pattern/flags"; flags there and in $options are
  // MongoDB's i, m, s, x.
  static Node compile_regex(const Json& operand, const std::string& label, const Json& siblings) {
    if (!operand.is_string()) {
      fail("$regex" + under(label) + " needs a string, found " + shown(operand));
    }
    const auto& written = operand.get_ref<const std::string&>();
    if (written.size() > kMaxRegexLength) {
      fail("$regex" + under(label) + " is " + std::to_string(written.size()) +
           " bytes long, more than the limit of " + std::to_string(kMaxRegexLength) +
           "; use a shorter pattern");
    }
    std::string pattern = written;
    std::string literal_flags;
    const auto last_slash = written.rfind('/');
    if (written.size() >= 3 && written.front() == '/' && last_slash > 1) {
      const auto tail = std::string_view(written).substr(last_slash + 1);
      const bool letters = std::all_of(tail.begin(), tail.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      });
      if (letters) {
        pattern = written.substr(1, last_slash - 1);
        literal_flags = std::string(tail);
        check_flags(literal_flags,
                    "$regex " + shown(operand) + under(label) + " has the unknown flag(s) ",
                    " after its closing \"/\"; use " + std::string(kRegexFlags) +
                        "; to match a leading \"/\" literally, escape it: \"\\\\/...\"");
      }
    }
    std::string option_flags;
    const auto options = siblings.find("$options");
    if (options != siblings.end()) {
      if (!options->is_string()) {
        fail("$options" + under(label) + " needs a string of flags, e.g. \"i\", found " +
             shown(*options));
      }
      option_flags = options->get<std::string>();
      check_flags(option_flags, "$options" + under(label) + " has the unknown flag(s) ",
                  "; use " + std::string(kRegexFlags));
      if (!option_flags.empty() && !literal_flags.empty()) {
        fail("$regex " + shown(operand) + under(label) +
             " has flags after its closing \"/\" and $options as well; give the flags in one "
             "place");
      }
    }
    const std::string flags = literal_flags + option_flags;
    // Boost's Perl syntax lets ^ and $ match at line breaks and . match a line break unless
    // told otherwise; MongoDB (PCRE) does neither without m and s.
    boost::regex::flag_type syntax = boost::regex::ECMAScript;
    syntax |= flags.find('m') == std::string::npos ? boost::regex::no_mod_m : 0;
    syntax |= flags.find('s') == std::string::npos ? boost::regex::no_mod_s : boost::regex::mod_s;
    if (flags.find('i') != std::string::npos) syntax |= boost::regex::icase;
    if (flags.find('x') != std::string::npos) syntax |= boost::regex::mod_x;
    Node node;
    node.kind = Node::Kind::kRegex;
    node.expensive = true;
    try {
      node.regex = std::make_shared<const boost::regex>(pattern, syntax);
      // Boost's $ without m is the end of the text, which is PCRE's answer for every text that
      // does not end in a line break; only those get the rewritten (slower) pattern.
      const auto final_break =
          flags.find('m') == std::string::npos ? pcre_dollar(pattern) : pattern;
      if (final_break != pattern) {
        node.regex_final_break = std::make_shared<const boost::regex>(final_break, syntax);
      }
    } catch (const std::exception& e) {
      std::string why = e.what();
      while (!why.empty() && (why.back() == '.' || why.back() == ' ')) why.pop_back();
      fail("invalid $regex " + in_quotes(written) + under(label) + ": " + why +
           "; write an ECMAScript regular expression, e.g. \"^Pixel [0-9]+$\"");
    }
    return node;
  }

  // Without m, PCRE's (and Python's) $ also matches before a line break that ends the text;
  // Boost's only at the very end. For texts ending in a line break, rewrites each $ that is an
  // assertion (not escaped, not in a character class, \Q...\E or a (?#...) comment) into a
  // lookahead saying exactly that.
  static std::string pcre_dollar(const std::string& pattern) {
    std::string out;
    const std::size_t size = pattern.size();
    const auto copy_through = [&](std::size_t& i, std::size_t end) {
      end = std::min(end, size);
      out.append(pattern, i, end - i);
      i = end;
    };
    bool in_class = false;
    std::size_t class_start = 0;
    for (std::size_t i = 0; i < size;) {
      const char c = pattern[i];
      if (c == '\\') {
        if (!in_class && i + 1 < size && pattern[i + 1] == 'Q') {
          const auto end = pattern.find("\\E", i + 2);
          copy_through(i, end == std::string::npos ? size : end + 2);
        } else {
          copy_through(i, i + 2);
        }
      } else if (in_class) {
        const char next = i + 1 < size ? pattern[i + 1] : '\0';
        if (c == '[' && (next == ':' || next == '=' || next == '.')) {
          const auto end = pattern.find(std::string{next, ']'}, i + 2);
          copy_through(i, end == std::string::npos ? size : end + 2);
        } else {
          // A ] right after [ or [^ is a literal.
          if (c == ']' && i != class_start) in_class = false;
          copy_through(i, i + 1);
        }
      } else if (c == '[') {
        in_class = true;
        copy_through(i, i + 1);
        if (i < size && pattern[i] == '^') copy_through(i, i + 1);
        class_start = i;
      } else if (c == '(' && pattern.compare(i, 3, "(?#") == 0) {
        const auto end = pattern.find(')', i + 3);
        copy_through(i, end == std::string::npos ? size : end + 1);
      } else if (c == '$') {
        out += "(?=\\n?\\z)";
        ++i;
      } else {
        copy_through(i, i + 1);
      }
    }
    return out;
  }

  // Fails with `before` + the unknown flags + `after` when `flags` has any but i, m, s, x.
  static void check_flags(const std::string& flags, const std::string& before,
                          const std::string& after) {
    std::string unknown;
    for (const char flag : flags) {
      if (std::string_view("imsx").find(flag) == std::string_view::npos &&
          unknown.find(flag) == std::string::npos) {
        unknown += flag;
      }
    }
    if (!unknown.empty()) fail(before + in_quotes(unknown) + after);
  }
};

}  // namespace

std::string invalid_key_reason(std::string_view key) {
  if (key.empty()) return "is empty";
  if (key.front() == '.') return "starts with \".\"";
  if (key.back() == '.') return "ends with \".\"";
  if (key.find("..") != std::string_view::npos) return "contains \"..\"";
  return {};
}
Query compile_query(const Json& query) {
  if (!query.is_object()) {
    fail("must be a JSON object like {\"os\": \"Android\"}, found " + type_phrase(query));
  }
  if (deeper_than(query, kMaxQueryDepth)) {
    fail("nested deeper than " + std::to_string(kMaxQueryDepth) + " levels; simplify it");
  }
  // Checked before anything else uses the strings: a later dump() would throw type_error.316.
  const auto bad_text = invalid_utf8_in(query);
  if (!bad_text.empty()) fail(bad_text + "; write requirements as UTF-8 text");
  Query compiled;
  Compiler().append_clauses(query, {}, "", compiled.clauses);
  compiled.order_clauses();
  return compiled;
}

Json pair_value_json(const std::string& text) {
  // As the Python package: true and false in any letter case ("True", "FALSE").
  const auto lower = [](std::string word) {
    for (auto& c : word) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return word;
  };
  if (text.size() <= 5) {
    const auto word = lower(text);
    if (word == "true") return true;
    if (word == "false") return false;
  }
  if (text == "null") return nullptr;
  return text;
}

Query compile_pairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Query compiled;
  for (const auto& [key, text] : pairs) {
    const auto reason = invalid_key_reason(key);
    if (!reason.empty()) {
      fail("key " + in_quotes(key) + " in " + in_quotes(key + "=" + text) + " " + reason +
           "; write pairs like board.rev=2");
    }
    if (is_operator(key)) {
      fail("key " + in_quotes(key) +
           " looks like an operator; operators need the JSON form, e.g. " +
           "{\"version\": {\"$gte\": \"13\"}}");
    }
    const Json value = pair_value_json(text);
    std::vector<Json> alternatives{value};
    if (value.is_string()) {
      // Only plain JSON numbers count ("11", "-2.5", "1e3"), not " 11" or "0x10".
      const bool plausible = !text.empty() && text.find_first_of(" \t\r\n") == std::string::npos;
      if (plausible) {
        auto number = Json::parse(text, nullptr, false);
        if (number.is_number()) alternatives.push_back(std::move(number));
      }
    }
    Clause clause;
    clause.kind = Clause::Kind::kField;
    clause.top_key = key;
    clause.label = key;
    clause.required = value;
    clause.node =
        make_field(split_path(key), make_values(Node::Kind::kEq, std::move(alternatives)));
    compiled.clauses.push_back(std::move(clause));
  }
  compiled.order_clauses();
  return compiled;
}
void Query::order_clauses() {
  eval_order.clear();
  for (std::size_t i = 0; i < clauses.size(); ++i) eval_order.push_back(i);
  std::stable_partition(eval_order.begin(), eval_order.end(),
                        [this](std::size_t i) { return !clauses[i].node.expensive; });
}
}  // namespace lockable::detail

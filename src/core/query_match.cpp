// Matching: evaluating a compiled Query (query.hpp) against a resource's attributes, with
// MongoDB's path and array semantics, and describing the first clause that fails. Never throws:
// every check was done when the query was compiled (query_compile.cpp).

#include "core/json_text.hpp"
#include "core/query.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <stdexcept>

namespace lockable::detail {
namespace {

// Reasons quote the user's requirement; this keeps one line readable for huge ones.
constexpr std::size_t kReasonLimit = 200;

// The values found at a path: usually zero or one, more when the path crosses arrays.
class Candidates {
 public:
  void push(const Json* value) {
    if (count_ < inline_.size()) {
      inline_[count_] = value;
    } else {
      overflow_.push_back(value);
    }
    ++count_;
  }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  const Json& operator[](std::size_t i) const {
    return i < inline_.size() ? *inline_[i] : *overflow_[i - inline_.size()];
  }

 private:
  std::array<const Json*, 4> inline_{};
  std::vector<const Json*> overflow_;
  std::size_t count_ = 0;
};

bool is_index(const std::string& part) {
  return !part.empty() && part.size() < 10 &&
         std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// MongoDB path semantics: a path step into an array looks into each object element (and, for
// a numeric step, also at that index).
void collect(const Json& value, const std::vector<std::string>& path, std::size_t step,
             Candidates& out) {
  if (step == path.size()) {
    out.push(&value);
    return;
  }
  if (value.is_object()) {
    const auto it = value.find(path[step]);
    if (it != value.end()) collect(*it, path, step + 1, out);
    return;
  }
  if (!value.is_array()) return;
  if (is_index(path[step])) {
    const auto index = std::strtoul(path[step].c_str(), nullptr, 10);
    if (index < value.size()) collect(value[index], path, step + 1, out);
  }
  for (const auto& element : value) {
    if (element.is_object()) collect(element, path, step, out);
  }
}

// `into_arrays` false: the values themselves only, as inside $elemMatch, where MongoDB matches
// each element as a single value (an element [1, 2] is not "greater than 1").
template <typename Predicate>
bool any_value_or_element(const Candidates& values, bool into_arrays, Predicate&& predicate) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const auto& value = values[i];
    if (predicate(value)) return true;
    if (into_arrays && value.is_array()) {
      for (const auto& element : value) {
        if (predicate(element)) return true;
      }
    }
  }
  return false;
}

bool equals_any(const Candidates& values, const std::vector<Json>& wanted, bool into_arrays) {
  if (values.empty()) {
    return std::any_of(wanted.begin(), wanted.end(), [](const Json& w) { return w.is_null(); });
  }
  return any_value_or_element(values, into_arrays, [&](const Json& value) {
    return std::any_of(wanted.begin(), wanted.end(), [&](const Json& w) { return value == w; });
  });
}

bool comparable(const Json& a, const Json& b) {
  return (a.is_number() && b.is_number()) || (a.is_string() && b.is_string());
}

bool regex_matches(const Node& node, const Json& value) {
  if (!value.is_string()) return false;
  const auto& text = value.get_ref<const std::string&>();
  const bool final_break = node.regex_final_break && !text.empty() && text.back() == '\n';
  try {
    return boost::regex_search(text, final_break ? *node.regex_final_break : *node.regex);
  } catch (const std::runtime_error&) {
    // Boost gives up on catastrophic backtracking; such a pattern simply does not match.
    return false;
  }
}

std::uint32_t type_bit(const Json& value) {
  switch (value.type()) {
    case Json::value_t::number_float:
      return kTypeDouble;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return kTypeInteger;
    case Json::value_t::string:
      return kTypeString;
    case Json::value_t::object:
      return kTypeObject;
    case Json::value_t::array:
      return kTypeArray;
    case Json::value_t::boolean:
      return kTypeBool;
    case Json::value_t::null:
      return kTypeNull;
    default:
      return 0;
  }
}

// MongoDB's $mod: the value truncated toward zero, C's % (the result takes the value's sign).
bool mod_matches(const Json& value, std::int64_t divisor, std::int64_t remainder) {
  const auto signed_mod = [&](std::int64_t number) {
    return divisor == -1 ? std::int64_t{0} : number % divisor;  // INT64_MIN % -1 overflows
  };
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (number <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return signed_mod(static_cast<std::int64_t>(number)) == remainder;
    }
    // Above INT64_MAX: positive, so the remainder is number % |divisor|, which fits.
    const std::uint64_t magnitude = divisor < 0
                                        ? std::uint64_t{0} - static_cast<std::uint64_t>(divisor)
                                        : static_cast<std::uint64_t>(divisor);
    return remainder >= 0 && number % magnitude == static_cast<std::uint64_t>(remainder);
  }
  if (value.is_number_integer()) return signed_mod(value.get<std::int64_t>()) == remainder;
  if (!value.is_number_float()) return false;
  const double number = std::trunc(value.get<double>());
  if (!std::isfinite(number)) return false;
  if (number >= -9223372036854775808.0 && number < 9223372036854775808.0) {
    return signed_mod(static_cast<std::int64_t>(number)) == remainder;
  }
  // fmod is exact; such a value is far beyond any lab attribute, so doubles suffice here.
  return std::fmod(number, static_cast<double>(divisor)) == static_cast<double>(remainder);
}

bool match_document(const Node& node, const Json& doc);

bool match_values(const Node& node, const Candidates& values, bool into_arrays = true) {
  using Kind = Node::Kind;
  switch (node.kind) {
    case Kind::kAllOf:
      return std::all_of(node.children.begin(), node.children.end(), [&](const Node& child) {
        return match_values(child, values, into_arrays);
      });
    case Kind::kEq:
      return equals_any(values, node.values, into_arrays);
    case Kind::kNotEq:
      return !equals_any(values, node.values, into_arrays);
    case Kind::kGt:
    case Kind::kGte:
    case Kind::kLt:
    case Kind::kLte: {
      const auto& bound = node.values.front();
      return any_value_or_element(values, into_arrays, [&](const Json& value) {
        if (!comparable(value, bound)) return false;
        switch (node.kind) {
          case Kind::kGt:
            return value > bound;
          case Kind::kGte:
            return value >= bound;
          case Kind::kLt:
            return value < bound;
          default:
            return value <= bound;
        }
      });
    }
    case Kind::kExists:
      return values.empty() != node.flag;
    case Kind::kRegex:
      return any_value_or_element(values, into_arrays,
                                  [&](const Json& value) { return regex_matches(node, value); });
    case Kind::kNot:
      return !match_values(node.children.front(), values, into_arrays);
    case Kind::kAll:
      if (node.values.empty() || values.empty()) return false;
      return std::all_of(node.values.begin(), node.values.end(), [&](const Json& wanted) {
        return any_value_or_element(values, into_arrays,
                                    [&](const Json& value) { return value == wanted; });
      });
    case Kind::kSize:
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].is_array() && values[i].size() == node.size) return true;
      }
      return false;
    case Kind::kSizeMatch:
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (!values[i].is_array()) continue;
        const Json length = values[i].size();
        Candidates one;
        one.push(&length);
        if (match_values(node.children.front(), one)) return true;
      }
      return false;
    case Kind::kType:
      return any_value_or_element(values, into_arrays, [&](const Json& value) {
        return (type_bit(value) & node.types) != 0;
      });
    case Kind::kMod:
      return any_value_or_element(values, into_arrays, [&](const Json& value) {
        return mod_matches(value, node.divisor, node.remainder);
      });
    case Kind::kElemMatchValue:
    case Kind::kElemMatchDoc:
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (!values[i].is_array()) continue;
        for (const auto& element : values[i]) {
          if (node.kind == Kind::kElemMatchDoc) {
            if (element.is_object() && match_document(node.children.front(), element)) return true;
          } else {
            Candidates one;
            one.push(&element);
            if (match_values(node.children.front(), one, false)) return true;
          }
        }
      }
      return false;
    case Kind::kIsObject:
      for (std::size_t i = 0; i < values.size(); ++i) {
        if (values[i].is_object()) return true;
      }
      return false;
    default:
      return false;
  }
}

bool match_document(const Node& node, const Json& doc) {
  using Kind = Node::Kind;
  const auto child_matches = [&](const Node& child) { return match_document(child, doc); };
  switch (node.kind) {
    case Kind::kAnd:
      return std::all_of(node.children.begin(), node.children.end(), child_matches);
    case Kind::kOr:
      return std::any_of(node.children.begin(), node.children.end(), child_matches);
    case Kind::kNor:
      return std::none_of(node.children.begin(), node.children.end(), child_matches);
    case Kind::kField: {
      Candidates values;
      collect(doc, node.path, 0, values);
      return match_values(node.children.front(), values);
    }
    case Kind::kTrue:
      return true;
    default:
      return false;
  }
}

std::string describe_values(const Json& attributes, const std::vector<std::string>& path) {
  Candidates values;
  collect(attributes, path, 0, values);
  if (values.empty()) return "missing";
  if (values.size() == 1) return shown(values[0]);
  Json all = Json::array();
  for (std::size_t i = 0; i < values.size(); ++i) all.push_back(values[i]);
  return shown(all);
}

}  // namespace

bool matches_value(const Node& value_node, const Json* value) {
  Candidates values;
  if (value != nullptr) values.push(value);
  return match_values(value_node, values);
}

bool matches_document(const Node& document_node, const Json& doc) {
  return match_document(document_node, doc);
}
bool Query::matches(const Json& attributes) const {
  for (const auto index : eval_order) {
    if (!match_document(clauses[index].node, attributes)) return false;
  }
  return true;
}

std::optional<std::string> Query::mismatch_reason(const Json& attributes) const {
  for (const auto& clause : clauses) {
    if (match_document(clause.node, attributes)) continue;
    switch (clause.kind) {
      case Clause::Kind::kImplicitOnline:
        return std::string("offline");
      case Clause::Kind::kLogical:
        return "does not satisfy " + shown(Json{{clause.top_key, clause.required}}, kReasonLimit);
      case Clause::Kind::kField:
      case Clause::Kind::kImplicitHostname:
        return clause.label + " is " + describe_values(attributes, clause.node.path) +
               ", required " + shown(clause.required, kReasonLimit);
    }
  }
  return std::nullopt;
}
}  // namespace lockable::detail

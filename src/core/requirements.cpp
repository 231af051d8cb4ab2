#include <lockable/error.hpp>
#include <lockable/requirements.hpp>

#include "core/json_text.hpp"
#include "core/matching.hpp"
#include "core/query.hpp"
#include "core/resource_index.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <utility>

namespace lockable {
namespace {

constexpr const char* kFormHint =
    "write a JSON object like {\"os\": \"Android\"} or pairs like os=Android&board.rev=2";

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

const std::shared_ptr<const detail::Query>& empty_query() {
  static const auto query = std::make_shared<const detail::Query>();
  return query;
}

Json parse_json_form(std::string_view text) {
  detail::SyntaxError error;
  auto parsed = detail::parse_json(text, detail::kMaxQueryDepth, error);
  if (!parsed) {
    if (error.line == 0) throw RequirementsError("requirements: " + error.detail + "; simplify it");
    throw RequirementsError("requirements: invalid JSON at line " + std::to_string(error.line) +
                            ", column " + std::to_string(error.column) + ": " + error.detail +
                            "; " + kFormHint);
  }
  return std::move(*parsed);
}

std::vector<std::pair<std::string, std::string>> split_pairs(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('&', start);
    if (end == std::string_view::npos) end = text.size();
    const auto pair = trim(text.substr(start, end - start));
    if (pair.empty()) {
      throw RequirementsError("requirements: empty pair in \"" + std::string(text) +
                              "\"; separate key=value pairs with a single &");
    }
    const auto equals = pair.find('=');
    if (equals == std::string_view::npos) {
      throw RequirementsError("requirements: \"" + std::string(pair) + "\" has no \"=\"; " +
                              kFormHint);
    }
    std::string key(trim(pair.substr(0, equals)));
    std::string value(trim(pair.substr(equals + 1)));
    if (value.empty()) {
      // As the Python package ("Missing value"): an empty string is written in the JSON form.
      throw RequirementsError("requirements: pair " + detail::dump(Json(std::string(pair))) +
                              " has no value; write one after \"=\", e.g. " + key + "=1, or {\"" +
                              key + "\": \"\"} for an empty string");
    }
    const bool repeated = std::any_of(pairs.begin(), pairs.end(),
                                      [&](const auto& other) { return other.first == key; });
    if (repeated) {
      throw RequirementsError("requirements: key \"" + key +
                              "\" is given twice; give each key once");
    }
    pairs.emplace_back(std::move(key), std::move(value));
    start = end + 1;
  }
  return pairs;
}

detail::Clause implicit_clause(detail::Clause::Kind kind, const std::string& key, Json value) {
  detail::Clause clause;
  clause.kind = kind;
  clause.top_key = key;
  clause.label = key;
  clause.required = value;
  detail::Node equal;
  equal.kind = detail::Node::Kind::kEq;
  equal.values.push_back(std::move(value));
  clause.node.kind = detail::Node::Kind::kField;
  clause.node.path = {key};
  clause.node.children.push_back(std::move(equal));
  return clause;
}

}  // namespace

Requirements::Requirements() : json_(Json::object()), query_(empty_query()) {}

namespace {

// Invalid UTF-8 is refused before anything else touches the text: nlohmann's dump() throws on
// it, and the requirement is written into reports and lock details.
void check_utf8(std::string_view text, bool json_form) {
  const auto offset = detail::invalid_utf8_offset(text);
  if (!offset) return;
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[*offset]));
  std::string where = "at byte offset " + std::to_string(*offset);
  if (!json_form) {
    const auto begin = text.rfind('&', *offset);
    const auto start = begin == std::string_view::npos ? 0 : begin + 1;
    const auto end = text.find('&', *offset);
    const auto pair = trim(text.substr(start, end == std::string_view::npos ? end : end - start));
    where = "in the pair " + detail::dump(Json(std::string(pair))) + " " + where;
  }
  throw RequirementsError(std::string("requirements: invalid UTF-8 ") + where + " (byte " + byte +
                          "); write requirements as UTF-8 text");
}

}  // namespace

Requirements Requirements::parse(std::string_view text) {
  const auto trimmed = trim(text);
  check_utf8(text, !trimmed.empty() && (trimmed.front() == '{' || trimmed.front() == '['));
  if (trimmed.empty()) return Requirements();
  if (trimmed.front() == '{' || trimmed.front() == '[') {
    return from_json(parse_json_form(trimmed));
  }
  if (trimmed.find('=') == std::string_view::npos) {
    // A lone JSON scalar ("42", "\"os\"", "true") is a JSON form that is not an object.
    const auto scalar = Json::parse(trimmed.begin(), trimmed.end(), nullptr, false);
    if (!scalar.is_discarded()) from_json(scalar);
  }
  const auto pairs = split_pairs(trimmed);
  Requirements result;
  result.json_ = Json::object();
  for (const auto& [key, value] : pairs) result.json_[key] = detail::pair_value_json(value);
  result.query_ = std::make_shared<const detail::Query>(detail::compile_pairs(pairs));
  return result;
}

Requirements Requirements::from_json(const Json& query) {
  Requirements result;
  // compile_query rejects non-objects and absurd nesting before anything else looks at them.
  result.query_ = std::make_shared<const detail::Query>(detail::compile_query(query));
  result.json_ = query;
  return result;
}

std::string Requirements::to_string() const { return detail::dump(json_); }

bool Requirements::matches(const Json& attributes) const { return query_->matches(attributes); }

std::optional<std::string> Requirements::mismatch_reason(const Json& attributes) const {
  return query_->mismatch_reason(attributes);
}

Requirements Requirements::with_implicit_filters(const std::string& hostname) const {
  Requirements result;
  result.json_ = json_;
  auto query = *query_;
  std::vector<detail::Clause> implicit;
  const auto filter = [&](const std::string& key, detail::Clause::Kind kind, Json value) {
    const auto named = json_.find(key);
    if (named == json_.end()) {
      result.json_[key] = value;
      implicit.push_back(implicit_clause(kind, key, std::move(value)));
    } else if (named->is_null()) {
      // null lifts the filter: the key goes away instead of meaning "null or missing".
      result.json_.erase(key);
      auto& clauses = query.clauses;
      clauses.erase(std::remove_if(clauses.begin(), clauses.end(),
                                   [&](const detail::Clause& c) { return c.top_key == key; }),
                    clauses.end());
    }
  };
  filter("online", detail::Clause::Kind::kImplicitOnline, true);
  filter("hostname", detail::Clause::Kind::kImplicitHostname, hostname);
  // The implicit filters come first so that an offline device is reported as just "offline".
  query.clauses.insert(query.clauses.begin(), std::make_move_iterator(implicit.begin()),
                       std::make_move_iterator(implicit.end()));
  query.order_clauses();
  result.query_ = std::make_shared<const detail::Query>(std::move(query));
  return result;
}

namespace detail {

const Query& query_of(const Requirements& requirements) { return *requirements.query_; }

std::vector<std::size_t> scan_matches(const Resources& resources,
                                      const Requirements& requirements) {
  std::vector<std::size_t> indexes;
  for (std::size_t i = 0; i < resources.size(); ++i) {
    if (requirements.matches(resources[i])) indexes.push_back(i);
  }
  return indexes;
}

std::vector<std::size_t> indexed_matches(const Resources& resources,
                                         const Requirements& requirements) {
  return index_of(resources).find_matches(query_of(requirements));
}

}  // namespace detail

std::vector<std::size_t> find_matches(const Resources& resources,
                                      const Requirements& requirements) {
  // A lab-sized list is scanned directly: building the index would cost more than it saves.
  // The index numbers rows in 32 bits.
  constexpr std::size_t kIndexFrom = 64;
  const bool indexable = resources.size() >= kIndexFrom &&
                         resources.size() <= std::numeric_limits<std::uint32_t>::max();
  return indexable ? detail::indexed_matches(resources, requirements)
                   : detail::scan_matches(resources, requirements);
}

std::vector<std::string> explain_mismatches(const Resources& resources,
                                            const Requirements& requirements) {
  std::vector<std::string> lines;
  for (const auto& resource : resources) {
    if (auto reason = requirements.mismatch_reason(resource.attributes)) {
      lines.push_back(resource.id + ": " + *reason);
    }
  }
  return lines;
}

}  // namespace lockable

#pragma once

#include <lockable/resource.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockable {

class Requirements;

namespace detail {
struct Query;
/// Private to the library: the compiled query.
const Query& query_of(const Requirements& requirements);
}  // namespace detail

/// A parsed, validated requirement: a MongoDB-style query over a resource's attributes.
///
/// Forms accepted by `parse`:
///   - a JSON object, possibly spanning lines: `{"os": "Android", "board.rev": {"$gte": 2}}`
///   - `key=value&key2=value2`: `true`/`false` (any letter case) and `null` are JSON values; any
///     other value matches a string, and also the number it reads as (`ver=11` matches "11" and
///     11). An empty value is an error.
///   - an empty or blank text: no requirement (matches everything).
/// Dotted keys address nested attributes in both forms. Operators (MongoDB semantics): $eq $ne
/// $gt $gte $lt $lte $in $nin $exists $type $mod $regex (pattern or "/pattern/flags", $options
/// i m s x) $and $or $nor $not $all (values or $elemMatch clauses) $size (a length or a
/// condition on it) $elemMatch. Errors (RequirementsError), invalid UTF-8 included, are raised
/// here, never while matching. Immutable and cheap to copy.
class Requirements {
 public:
  /// Matches everything.
  Requirements();
  static Requirements parse(std::string_view text);
  static Requirements from_json(const Json& query);

  /// The requirement as the user gave it (for reports), normalised to a JSON object.
  const Json& json() const noexcept { return json_; }
  /// Compact JSON text of `json()`.
  std::string to_string() const;

  /// True when the resource's attributes satisfy the requirement.
  bool matches(const Json& attributes) const;
  bool matches(const Resource& resource) const { return matches(resource.attributes); }

  /// Why `attributes` do not match, in one short clause (`hostname is "rig-02", required
  /// "rig-01"`, `offline`), or nullopt when they match.
  std::optional<std::string> mismatch_reason(const Json& attributes) const;

  /// This requirement plus the implicit filters `online: true` and `hostname: <hostname>`, each
  /// added unless the requirement names that top-level key; a value of null lifts the filter.
  Requirements with_implicit_filters(const std::string& hostname) const;

 private:
  friend const detail::Query& detail::query_of(const Requirements& requirements);
  Json json_;
  std::shared_ptr<const detail::Query> query_;
};

/// Indexes (into `resources`) of the resources that satisfy `requirements`, in input order.
std::vector<std::size_t> find_matches(const Resources& resources, const Requirements& requirements);

/// One line per resource saying why it does not match (`dut-4: offline`), for resources that do
/// not; used by front ends to explain why no device could be found.
std::vector<std::string> explain_mismatches(const Resources& resources,
                                            const Requirements& requirements);

}  // namespace lockable

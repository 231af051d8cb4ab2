#pragma once

// Private to the library: a column store over an immutable list of resources, so that a query
// is evaluated once per distinct attribute value rather than once per resource.
//
// Scanning resources one by one is bound by memory latency: every attribute lookup walks a
// std::map spread over the heap. Lab attributes have few distinct values (a handful of OSes,
// models and board revisions across thousands of devices), so the index keeps, for each
// attribute path reachable through nested objects, the rows that have a value there and a small
// code for that value. A field condition then runs once per distinct value (a regex included)
// and is spread over the rows as a bitmap; $and/$or/$nor combine bitmaps.
//
// The result is exactly that of Query::matches on every resource: paths that step into an
// array, and resources whose attributes are not an object, are evaluated by the tree matcher
// for the rows concerned.

#include <lockable/resource.hpp>

#include "core/query.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace lockable::detail {

class ResourceIndex {
 public:
  /// Indexes `resources`, which must outlive the index and stay unchanged. Rows are numbered in
  /// 32 bits: callers index at most 2^32 - 1 resources.
  explicit ResourceIndex(const std::vector<Resource>& resources);
  ~ResourceIndex();
  ResourceIndex(const ResourceIndex&) = delete;
  ResourceIndex& operator=(const ResourceIndex&) = delete;

  /// Rows (indexes into the resources) that satisfy `query`, ascending.
  std::vector<std::size_t> find_matches(const Query& query) const;

 private:
  struct PathNode;
  class Bitmap;

  Bitmap evaluate_document(const Node& node) const;
  Bitmap evaluate_field(const Node& node) const;

  const std::vector<Resource>& resources_;
  std::unique_ptr<PathNode> root_;
  /// Rows whose attributes are not a JSON object (only possible for hand-built lists).
  std::vector<std::uint32_t> unindexed_rows_;
};

}  // namespace lockable::detail

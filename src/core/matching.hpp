#pragma once

// Private to the library: the two ways find_matches can answer, exposed so that tests can hold
// them to the same results on any list size.

#include <lockable/requirements.hpp>

#include <cstddef>
#include <vector>

namespace lockable::detail {

/// Tests every resource in turn with the tree matcher.
std::vector<std::size_t> scan_matches(const Resources& resources, const Requirements& requirements);

/// Evaluates the query over the list's column index (built on first use).
std::vector<std::size_t> indexed_matches(const Resources& resources,
                                         const Requirements& requirements);

}  // namespace lockable::detail

#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace lockable {

/// Picks one distinct resource per requirement: `candidates[i]` lists the resource indexes that
/// requirement `i` may use, best first. Returns `result` with `result[i]` taken from
/// `candidates[i]` and no index used twice, or nullopt when no such choice exists. Uses
/// augmenting paths (Kuhn), so it finds a full assignment whenever one exists, unlike a greedy
/// first-fit that can give a device to the wrong requirement. Deterministic; prefers earlier
/// candidates. Pure; no I/O.
std::optional<std::vector<std::size_t>> assign_distinct(
    const std::vector<std::vector<std::size_t>>& candidates);

}  // namespace lockable

#pragma once

#include <lockable/allocation.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace lockable::gtest::detail {

/// Seconds with millisecond precision, as GoogleTest writes `time`: "0.012".
std::string format_seconds(Allocation::Duration duration);

/// `base` when the suite holds one device, else `base_<index + 1>`.
std::string property_name(const char* base, std::size_t index, std::size_t count);

/// Records the grant-time properties of `allocations` (resource id, alloc id, requirements,
/// queue time, start time) on whatever GoogleTest element is current (a suite in
/// SetUpTestSuite, <testsuites> in an environment).
void record_lock_properties(const std::vector<Allocation>& allocations);

/// Records `lockable_allocation_duration` for each (released) allocation.
void record_release_properties(const std::vector<Allocation>& allocations);

/// Prints a `[ LOCKABLE ] ...` line on stdout, where GoogleTest prints.
void console(const std::string& line);

/// `pixel-7-01, nrf52-dk-02`.
std::string resource_ids(const std::vector<Allocation>& allocations);

}  // namespace lockable::gtest::detail

#pragma once

#include <lockable/allocation.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace lockable::gtest::detail {

/// `base` when the suite holds one device, else `base_<index + 1>`.
std::string property_name(const char* base, std::size_t index, std::size_t count);

/// Property names of a suite's own devices, on its <testsuite> and on each of its tests.
inline constexpr const char* kSuitePrefix = "lockable_";
/// Property names of the global environment's device on each test (on <testsuites> it has the
/// plain names), so that a test in a suite with its own device keeps both.
inline constexpr const char* kGlobalOnTestPrefix = "lockable_global_";

/// Records the grant-time properties of `allocations` (`<prefix>resource_id`, `alloc_id`,
/// `requirements`, `allocation_queue_time`, `allocation_start_time`) on whatever GoogleTest
/// element is current: a suite in SetUpTestSuite, <testsuites> in an environment, the test in a
/// fixture's SetUp() or a listener's OnTestStart.
void record_lock_properties(const std::vector<Allocation>& allocations,
                            const std::string& prefix = kSuitePrefix);

/// Records `lockable_allocation_duration` for each (released) allocation.
void record_release_properties(const std::vector<Allocation>& allocations);

/// Prints a `[ LOCKABLE ] ...` line on stdout, where GoogleTest prints.
void console(const std::string& line);

/// `pixel-7-01, nrf52-dk-02`.
std::string resource_ids(const std::vector<Allocation>& allocations);

}  // namespace lockable::gtest::detail

#pragma once

#include <lockable/allocation.hpp>
#include <lockable/requirements.hpp>

#include <functional>
#include <string>
#include <vector>

namespace lockable::gtest::detail {

/// The outcome of locking the devices of a suite or of the global environment.
struct LockAttempt {
  /// The requirements as compact JSON (an array when several), "" if they could not be parsed.
  std::string requirements;
  /// Why nothing was locked: the requirements and the library's reasons (per device: why it did
  /// not match, or who held it until the timeout). Empty on success.
  std::string error;
  /// True when the failure is "no device" (no match, timeout), which on_unavailable=skip may turn
  /// into a skip; false for configuration errors, which always fail.
  bool unavailable = false;
};

/// Locks one device per requirement (all or nothing) through the shared Lockable, announcing the
/// attempt and the result on the console as `who`. The devices go into `destination` (in the
/// order of the requirements; left empty on failure) under Runtime::held_mutex() as soon as they
/// are granted, so that a signal from then on releases them. Never throws.
LockAttempt attempt_lock(const std::string& who,
                         const std::function<std::vector<Requirements>()>& requirements,
                         std::vector<Allocation>& destination);

}  // namespace lockable::gtest::detail

#pragma once

// Waiting in tests for something another thread or process does: event ordering, not timing.
// The guard only bounds a failing test; a passing one never comes near it.

#include <chrono>
#include <thread>

namespace lockable::test {

/// Calls `condition` every `step` until it returns true (then true), or until `guard` has passed
/// (then one last call decides).
template <typename Condition>
bool eventually(Condition condition,
                std::chrono::steady_clock::duration guard = std::chrono::seconds(60),
                std::chrono::steady_clock::duration step = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(step);
  }
  return condition();
}

}  // namespace lockable::test

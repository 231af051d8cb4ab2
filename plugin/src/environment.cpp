#include "lock_attempt.hpp"
#include "report.hpp"
#include "runtime.hpp"

#include <lockable/error.hpp>
#include <lockable/gtest/environment.hpp>

#include <mutex>
#include <utility>

namespace lockable::gtest {

GlobalDeviceEnvironment::GlobalDeviceEnvironment(std::string requirements)
    : requirements_(std::move(requirements)) {
  // The listener turns a missing device into per-test failures; registering it here covers
  // programs that add this environment themselves without init().
  detail::Runtime::instance().ensure_listener();
}

void GlobalDeviceEnvironment::SetUp() {
  auto& runtime = detail::Runtime::instance();
  auto& global = runtime.global();
  {
    std::lock_guard<std::mutex> lock(runtime.held_mutex());
    for (auto& allocation : global.allocations) allocation.unlock();
    global.allocations.clear();
  }
  global.error.clear();
  global.unavailable = false;
  global.lost.clear();

  auto attempt = detail::attempt_lock(
      "global environment",
      [this] { return std::vector<Requirements>{Requirements::parse(requirements_)}; },
      global.allocations);
  if (!attempt.requirements.empty()) {
    ::testing::Test::RecordProperty("lockable_requirements", attempt.requirements);
  }
  if (attempt.error.empty()) {
    // Under the mutex Runtime::release_all takes: Ctrl-C may release them from the signal
    // thread at any moment.
    std::lock_guard<std::mutex> lock(runtime.held_mutex());
    detail::record_lock_properties(global.allocations);
    detail::watch_for_loss(global.allocations, global.lost, "the global environment");
    return;
  }
  ::testing::Test::RecordProperty("lockable_error", attempt.error);
  global.error = std::move(attempt.error);
  global.unavailable = true;
  global.on_unavailable = OnUnavailable::kFail;
  if (attempt.unavailable) {
    try {
      global.on_unavailable = runtime.config().on_unavailable;
    } catch (const Error&) {
      // Unreachable in practice: the lock attempt read the same configuration.
    }
  }
}

void GlobalDeviceEnvironment::TearDown() {
  auto& runtime = detail::Runtime::instance();
  auto& global = runtime.global();
  if (global.allocations.empty()) return;
  {
    std::lock_guard<std::mutex> lock(runtime.held_mutex());
    for (auto& allocation : global.allocations) allocation.unlock();
  }
  detail::record_release_properties(global.allocations);
  if (const auto lost = global.lost.get()) {
    ::testing::Test::RecordProperty("lockable_lost", *lost);
  }
  detail::console("global environment: released " + detail::resource_ids(global.allocations) +
                  ", held " + format_seconds(global.allocations.front().duration()) + " s");
}

bool has_global_device() noexcept {
  auto& runtime = detail::Runtime::instance();
  std::lock_guard<std::mutex> lock(runtime.held_mutex());
  const auto& global = runtime.global();
  return !global.allocations.empty() && global.allocations.front().held();
}

Device global_device() {
  auto& runtime = detail::Runtime::instance();
  const auto& global = runtime.global();
  if (has_global_device()) return Device(global.allocations.front());
  if (!global.error.empty()) throw Error("no global device: " + global.error);
  throw Error(
      "no global device: give --lockable_requirements=... (or LOCKABLE_REQUIREMENTS) to a program "
      "linked with lockable::gtest_main or calling lockable::gtest::init(); the device is held "
      "from the first test to the last");
}

}  // namespace lockable::gtest

#include "lock_attempt.hpp"
#include "report.hpp"
#include "runtime.hpp"

#include <lockable/error.hpp>
#include <lockable/gtest/lockable_test.hpp>

#include <gtest/gtest.h>

namespace lockable::gtest::detail {
namespace {

std::string current_suite_name() {
  const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite();
  return suite != nullptr ? suite->name() : "<suite>";
}

}  // namespace

SuiteState& new_suite_state() { return Runtime::instance().new_suite_state(); }

void set_up_suite(SuiteState& state, std::vector<Requirements> (*requirements)()) {
  // A state is reused when the program repeats its tests (--gtest_repeat).
  {
    std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());
    for (auto& allocation : state.allocations) allocation.unlock();
    state.allocations.clear();
  }
  state.error.clear();
  state.skipped = false;
  state.lost.clear();
  state.name = current_suite_name();

  LockAttempt attempt = attempt_lock("suite " + state.name, requirements, state.allocations);
  if (!attempt.requirements.empty()) {
    ::testing::Test::RecordProperty("lockable_requirements", attempt.requirements);
  }
  if (attempt.error.empty()) {
    // Under the mutex Runtime::release_all takes: Ctrl-C may release them from the signal
    // thread at any moment.
    std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());
    record_lock_properties(state.allocations);
    watch_for_loss(state.allocations, state.lost, "suite " + state.name);
    return;
  }
  state.error = attempt.error;
  // Also on the suite, where the error stays when a filter leaves no test to carry it.
  ::testing::Test::RecordProperty("lockable_error", state.error);
  bool skip = false;
  if (attempt.unavailable) {
    try {
      skip = Runtime::instance().config().on_unavailable == OnUnavailable::kSkip;
    } catch (const Error&) {
      // A bad configuration already surfaced as a non-"unavailable" error.
    }
  }
  state.skipped = skip;
  // Not ADD_FAILURE() here: GoogleTest 1.12 would report every test skipped, without the text.
  // set_up_test() fails (or skips) each test with the reason instead.
  console(state.error);
}

void tear_down_suite(SuiteState& state) {
  if (state.allocations.empty()) return;
  {
    std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());
    for (auto& allocation : state.allocations) allocation.unlock();
  }
  record_release_properties(state.allocations);
  if (const auto lost = state.lost.get()) ::testing::Test::RecordProperty("lockable_lost", *lost);
  console("suite " + state.name + ": released " + resource_ids(state.allocations) + ", held " +
          format_seconds(state.allocations.front().duration()) + " s");
}

void set_up_test(const SuiteState& state) {
  if (!state.allocations.empty()) {
    // The signal thread releases the devices on Ctrl-C (Runtime::release_all), maybe right now:
    // read them under the mutex it takes.
    std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());
    record_lock_properties(state.allocations);
  }
  if (!state.error.empty()) {
    if (state.skipped) {
      skip_running_test(state.error);
    } else {
      fail_running_test(state.error);
    }
    return;
  }
  if (const auto lost = state.lost.get()) fail_running_test(*lost);
}

const Allocation& allocation(const SuiteState& state, std::size_t index) {
  bool held = false;
  {
    std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());
    held = index < state.allocations.size() && state.allocations[index].held();
  }
  if (held) return state.allocations[index];
  if (!state.error.empty()) {
    throw Error("no device for this suite: " + state.error);
  }
  if (state.allocations.empty()) {
    throw Error(
        "no device is locked: device()/allocation() work inside the suite's tests, after "
        "SetUpTestSuite(); a suite that defines its own SetUpTestSuite() must call "
        "LockableTest::SetUpTestSuite() first");
  }
  if (index >= state.allocations.size()) {
    throw Error("device(" + std::to_string(index) + ") is out of range: suite " + state.name +
                " holds " + std::to_string(state.allocations.size()) +
                " device(s), one per requirement; use an index below that");
  }
  throw Error("device(" + std::to_string(index) + ") of suite " + state.name +
              " was already released (TearDownTestSuite ran)");
}

std::size_t device_count(const SuiteState& state) noexcept { return state.allocations.size(); }

}  // namespace lockable::gtest::detail

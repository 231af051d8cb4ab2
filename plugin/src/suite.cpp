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
  for (auto& allocation : state.allocations) allocation.unlock();
  state.allocations.clear();
  state.error.clear();
  state.skipped = false;
  state.lost.clear();
  state.name = current_suite_name();

  LockAttempt attempt = attempt_lock("suite " + state.name, requirements);
  if (!attempt.requirements.empty()) {
    ::testing::Test::RecordProperty("lockable_requirements", attempt.requirements);
  }
  if (attempt.error.empty()) {
    state.allocations = std::move(attempt.allocations);
    record_lock_properties(state.allocations);
    watch_for_loss(state.allocations, state.lost, "suite " + state.name);
    return;
  }
  state.error = attempt.error;
  // GoogleTest 1.12 drops set-up failure text from the XML/JSON report; keep it as a property.
  ::testing::Test::RecordProperty("lockable_error", state.error);
  bool skip = false;
  if (attempt.unavailable) {
    try {
      skip = Runtime::instance().config().on_unavailable == OnUnavailable::kSkip;
    } catch (const Error&) {
      // A bad configuration already surfaced as a non-"unavailable" error.
    }
  }
  if (skip) {
    state.skipped = true;
  } else {
    // Marks every test of the suite skipped (1.12) and fails the program.
    add_failure_at_user_code(state.error);
  }
}

void tear_down_suite(SuiteState& state) {
  if (state.allocations.empty()) return;
  for (auto& allocation : state.allocations) allocation.unlock();
  record_release_properties(state.allocations);
  if (const auto lost = state.lost.get()) ::testing::Test::RecordProperty("lockable_lost", *lost);
  console("suite " + state.name + ": released " + resource_ids(state.allocations) + ", held " +
          format_seconds(state.allocations.front().duration()) + " s");
}

const std::string* skip_reason(const SuiteState& state) noexcept {
  return state.skipped ? &state.error : nullptr;
}

std::optional<std::string> loss(const SuiteState& state) { return state.lost.get(); }

const Allocation& allocation(const SuiteState& state, std::size_t index) {
  if (index < state.allocations.size() && state.allocations[index].held()) {
    return state.allocations[index];
  }
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

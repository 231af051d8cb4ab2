#pragma once

#include <lockable/allocation.hpp>
#include <lockable/gtest/device.hpp>
#include <lockable/requirements.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace lockable::gtest {

namespace detail {

/// Per-suite lock state, owned by the plugin's runtime so that it is released before the shared
/// Lockable goes away, also when the program exits mid-suite.
struct SuiteState;

/// A new state, owned by the runtime for the rest of the program.
SuiteState& new_suite_state();
/// Locks the suite's devices (from `requirements()`, called here so that a parse error fails the
/// suite) and records the report properties on the suite; without a device, keeps the reason for
/// set_up_test() and records it as `lockable_error`.
void set_up_suite(SuiteState& state, std::vector<Requirements> (*requirements)());
/// Releases the devices and records the hold durations.
void tear_down_suite(SuiteState& state);
/// Per test, before its body: records the suite's allocation on the test (so that it lands in
/// the test's `<properties>`), and, when the suite has no device or lost it, fails the test
/// (skips it with on_unavailable=skip) with the reason, at the user's TEST_F. GoogleTest then
/// does not run the body.
void set_up_test(const SuiteState& state);
/// The allocation `index`; throws lockable::Error saying why there is none.
const Allocation& allocation(const SuiteState& state, std::size_t index);
std::size_t device_count(const SuiteState& state) noexcept;

inline void append_requirements(std::vector<Requirements>& out, const Requirements& requirements) {
  out.push_back(requirements);
}
inline void append_requirements(std::vector<Requirements>& out, std::string_view text) {
  out.push_back(Requirements::parse(text));
}
// Containers (std::array, std::vector, C arrays) of any of the above: one device each. Strings
// are containers of char too, so they are excluded here and taken by the overload above.
template <class Range,
          class = std::enable_if_t<!std::is_convertible_v<const Range&, std::string_view> &&
                                   !std::is_convertible_v<const Range&, Requirements>>,
          class = decltype(std::begin(std::declval<const Range&>()))>
void append_requirements(std::vector<Requirements>& out, const Range& range) {
  for (const auto& item : range) append_requirements(out, item);
}

template <class T, class = void>
struct HasRequirementsMethod : std::false_type {};
template <class T>
struct HasRequirementsMethod<T, std::void_t<decltype(T::requirements())>> : std::true_type {};

template <class T, class = void>
struct HasRequirementsConstant : std::false_type {};
template <class T>
struct HasRequirementsConstant<T, std::void_t<decltype(T::kRequirements)>> : std::true_type {};

}  // namespace detail

/// Base of a GoogleTest fixture whose suite needs a device (or several). The device is locked in
/// `SetUpTestSuite()`, before the suite's first test, and released in `TearDownTestSuite()`, after
/// its last; every test of the suite sees the same device. Declare what the suite needs in one
/// line, in either form:
///
///     class PhoneTest : public lockable::gtest::LockableTest<PhoneTest> {
///      public:
///       static constexpr const char* kRequirements = R"({"os": "Android"})";
///     };
///     TEST_F(PhoneTest, HasSerial) { EXPECT_FALSE(device().str("serial").empty()); }
///
/// or `static lockable::Requirements requirements();` (any text form `Requirements::parse`
/// accepts, a `Requirements`, or a container of them). Several requirements (a `std::array` of
/// texts, a `std::vector<Requirements>`) lock one distinct device each, all or nothing;
/// `device(i)` follows their order.
///
/// Report: the suite's `<testsuite>` gets `lockable_resource_id`, `lockable_alloc_id`,
/// `lockable_requirements`, `lockable_allocation_queue_time`, `lockable_allocation_start_time`
/// and `lockable_allocation_duration` (numbered `_1`, `_2`, ... with several devices), or
/// `lockable_error` when no device could be locked. Each test of the suite gets the same
/// properties but the duration (known only at the release) as its own `<property>` elements,
/// where JUnit readers and CI servers show them.
///
/// When no device can be locked, every test of the suite fails with the reason as its failure
/// message (or is skipped with it, with on_unavailable=skip), pointing at the TEST_F, without
/// running its body.
///
/// A device lost while held (a lease backend's lease expired) fails the running test, every
/// later test of the suite fails without running, and the reason lands in `lockable_lost`.
///
/// A derived class that defines its own `SetUpTestSuite()`/`TearDownTestSuite()`/`SetUp()` must
/// call this class's version first (and return from `SetUp()` when `IsSkipped()` or
/// `HasFatalFailure()`).
template <class Derived>
class LockableTest : public ::testing::Test {
 public:
  static void SetUpTestSuite() { detail::set_up_suite(state(), &requirements_of_suite); }
  static void TearDownTestSuite() { detail::tear_down_suite(state()); }

  /// The device `index` (in the order of the requirements). Throws lockable::Error when the suite
  /// holds no such device.
  static Device device(std::size_t index = 0) { return Device(detail::allocation(state(), index)); }
  /// The allocation behind `device(index)`: alloc id, queue time, start time.
  static const Allocation& allocation(std::size_t index = 0) {
    return detail::allocation(state(), index);
  }
  /// How many devices the suite holds (0 before the suite's set-up or when none was locked).
  static std::size_t device_count() noexcept { return detail::device_count(state()); }

 protected:
  // GoogleTest 1.12 ignores a skip in SetUpTestSuite() and turns a failure there into skipped
  // tests without its text, so a missing device fails (or skips) each test here instead.
  void SetUp() override { detail::set_up_test(state()); }

 private:
  static detail::SuiteState& state() {
    // One state per derived suite; owned by the runtime, never destroyed before it.
    static detail::SuiteState& instance = detail::new_suite_state();
    return instance;
  }

  static std::vector<Requirements> requirements_of_suite() {
    std::vector<Requirements> out;
    if constexpr (detail::HasRequirementsMethod<Derived>::value) {
      detail::append_requirements(out, Derived::requirements());
    } else if constexpr (detail::HasRequirementsConstant<Derived>::value) {
      detail::append_requirements(out, Derived::kRequirements);
    } else {
      static_assert(detail::HasRequirementsMethod<Derived>::value,
                    "A LockableTest<Suite> needs `static constexpr const char* kRequirements = "
                    "\"...\";` or `static lockable::Requirements requirements();` in Suite "
                    "(public, or befriend LockableTest<Suite>)");
    }
    return out;
  }
};

}  // namespace lockable::gtest

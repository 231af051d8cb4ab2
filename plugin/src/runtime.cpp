#include "runtime.hpp"

#include "lock_attempt.hpp"
#include "report.hpp"
#include "signals.hpp"

#include "core/allocation_access.hpp"

#include <lockable/ctest.hpp>
#include <lockable/error.hpp>
#include <lockable/gtest/environment.hpp>
#include <lockable/gtest/init.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <utility>

namespace lockable::gtest {
namespace detail {
namespace {

// Turns a missing global device into a failure or skip of every test, before the test object is
// built, so an unmodified test program never runs a test without its device. (A failure or skip in
// Environment::SetUp is reported misleadingly by GoogleTest 1.12, see gtest-notes.md §2.)
class GlobalDeviceListener : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo& /*test_info*/) override {
    const GlobalState& global = Runtime::instance().global();
    // On the test too, where JUnit readers look (1.12 writes <testsuites> properties as
    // attributes that they ignore).
    if (!global.allocations.empty()) {
      std::lock_guard<std::mutex> lock(Runtime::instance().held_mutex());  // see release_all
      record_lock_properties(global.allocations, kGlobalOnTestPrefix);
    }
    if (const auto lost = global.lost.get()) {
      fail_running_test(*lost);
      return;
    }
    if (!global.unavailable) return;
    if (global.on_unavailable == OnUnavailable::kSkip) {
      skip_running_test(global.error);
    } else {
      fail_running_test(global.error);
    }
  }
};

std::string requirements_text(const std::vector<Requirements>& requirements) {
  if (requirements.size() == 1) return requirements.front().to_string();
  Json list = Json::array();
  for (const auto& r : requirements) list.push_back(r.json());
  return list.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace

Runtime& Runtime::instance() {
  static Runtime runtime;
  return runtime;
}

Runtime::~Runtime() {
  // A signal from here on takes the default action; the exit below releases the devices.
  stop_releasing_on_signals();
  release_all();
}

std::vector<std::string> Runtime::release_all() noexcept {
  std::vector<std::string> released;
  std::unique_lock<std::mutex> lock(held_mutex_);
  releasing_all_ = true;
  // A lock call in progress may be granted at any moment: end its wait, then let it hand over
  // what it got. Bounded, so that a signal always ends the program.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (locking_ > 0 && std::chrono::steady_clock::now() < give_up) {
    {
      std::lock_guard<std::mutex> guard(mutex_);  // the Lockable may be made just now
      if (lockable_) lockable_->cancel();
    }
    locking_done_.wait_for(lock, std::chrono::milliseconds(50));
  }
  const auto release = [&](std::vector<Allocation>& allocations) {
    for (auto& allocation : allocations) {
      if (!allocation.held()) continue;
      // Not unlock(): that destroys the lock object, which a test on the main thread may be
      // using right now (allocation().lost()); the process ends in a moment anyway.
      ::lockable::detail::AllocationAccess::release_device(allocation);
      released.push_back(allocation.resource_id());
    }
  };
  for (auto& suite : suites_) release(suite.allocations);
  release(global_.allocations);
  return released;
}

const Config& Runtime::config() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!config_) config_ = config_from_environment();
  return *config_;
}

void Runtime::set_config(Config config) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (configured_by_init_) {
    throw ConfigError(
        "lockable::gtest::init() was called twice; call it once, after InitGoogleTest (a program "
        "linked with lockable::gtest_main must not call it at all)");
  }
  if (lockable_) {
    throw ConfigError(
        "lockable::gtest::init() was called after a suite already locked a device; call it in "
        "main(), after InitGoogleTest and before RUN_ALL_TESTS()");
  }
  config_ = std::move(config);
  configured_by_init_ = true;
}

Lockable& Runtime::lockable() {
  const Config& configuration = config();
  std::lock_guard<std::mutex> lock(mutex_);
  if (!lockable_) lockable_ = std::make_unique<Lockable>(to_options(configuration));
  return *lockable_;
}

void Runtime::set_lockable(std::unique_ptr<Lockable> lockable) {
  if (!lockable) throw ConfigError("lockable::gtest::use_lockable() needs a Lockable, got none");
  std::lock_guard<std::mutex> lock(mutex_);
  if (lockable_) {
    throw ConfigError(
        "lockable::gtest::use_lockable() was called after a suite already locked a device; call "
        "it in main(), after init() and before RUN_ALL_TESTS()");
  }
  lockable_ = std::move(lockable);
}

void LossRecord::record(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!text_) text_ = text;
}

std::optional<std::string> LossRecord::get() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return text_;
}

void LossRecord::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  text_.reset();
}

UserLocation user_location() {
  auto* unit = ::testing::UnitTest::GetInstance();
  if (const auto* test = unit->current_test_info()) return {test->file(), test->line()};
  if (const auto* suite = unit->current_test_suite()) {
    for (int i = 0; i < suite->total_test_count(); ++i) {
      if (const auto* test = suite->GetTestInfo(i)) return {test->file(), test->line()};
    }
  }
  return {};
}

void add_failure_at_user_code(const std::string& message) {
  const UserLocation where = user_location();
  if (where.line < 0) {
    ADD_FAILURE() << message;
  } else {
    ADD_FAILURE_AT(where.file.c_str(), where.line) << message;
  }
}

namespace {

void stop_running_test(::testing::TestPartResult::Type type, const std::string& message) {
  const UserLocation where = user_location();
  GTEST_MESSAGE_AT_(where.line < 0 ? nullptr : where.file.c_str(), where.line, message.c_str(),
                    type);
}

}  // namespace

void fail_running_test(const std::string& message) {
  stop_running_test(::testing::TestPartResult::kFatalFailure, message);
}

void skip_running_test(const std::string& message) {
  stop_running_test(::testing::TestPartResult::kSkip, message);
}

void watch_for_loss(std::vector<Allocation>& allocations, LossRecord& record,
                    const std::string& who) {
  for (auto& allocation : allocations) {
    allocation.on_lock_loss([&record, who, id = allocation.resource_id()](const std::string& why) {
      const std::string what = who + " lost device " + id + " while holding it (" + why +
                               "); another run may be using it, so the tests that follow fail "
                               "without running";
      record.record("lockable: " + what);
      console(what);
      // GoogleTest takes failures from any thread and gives them to the running test.
      add_failure_at_user_code("lockable: " + what);
    });
  }
}

bool Runtime::begin_locking() {
  std::lock_guard<std::mutex> lock(held_mutex_);
  if (releasing_all_) return false;
  ++locking_;
  return true;
}

void Runtime::finish_locking(std::vector<Allocation> granted,
                             std::vector<Allocation>& destination) noexcept {
  {
    std::lock_guard<std::mutex> lock(held_mutex_);
    destination = std::move(granted);
    --locking_;
  }
  locking_done_.notify_all();
}

SuiteState& Runtime::new_suite_state() {
  std::lock_guard<std::mutex> lock(mutex_);
  return suites_.emplace_back();
}

void Runtime::ensure_listener() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (listener_added_) return;
  // GoogleTest owns (and deletes) appended listeners.
  ::testing::UnitTest::GetInstance()->listeners().Append(new GlobalDeviceListener);
  listener_added_ = true;
}

namespace {

// One lock call between Runtime::begin_locking() and finish_locking(), the latter also when the
// call throws.
class LockingScope {
 public:
  explicit LockingScope(std::vector<Allocation>& destination) : destination_(destination) {}
  ~LockingScope() { hand_over({}); }
  LockingScope(const LockingScope&) = delete;
  LockingScope& operator=(const LockingScope&) = delete;

  bool begin() { return began_ = Runtime::instance().begin_locking(); }
  void hand_over(std::vector<Allocation> granted) noexcept {
    if (!began_) return;
    began_ = false;
    Runtime::instance().finish_locking(std::move(granted), destination_);
  }

 private:
  std::vector<Allocation>& destination_;
  bool began_ = false;
};

}  // namespace

LockAttempt attempt_lock(const std::string& who,
                         const std::function<std::vector<Requirements>()>& requirements,
                         std::vector<Allocation>& destination) {
  LockAttempt attempt;
  LockingScope locking(destination);
  const auto fail = [&](const std::string& why, bool unavailable) {
    attempt.unavailable = unavailable;
    std::string mode;
    if (unavailable) {
      try {
        mode = std::string(" (on_unavailable=") +
               to_string(Runtime::instance().config().on_unavailable) + ")";
      } catch (const std::exception&) {
        // config() worked before getting here; keep the message without the mode otherwise.
      }
    }
    attempt.error = "lockable: " + who + " could not lock a device" +
                    (attempt.requirements.empty() ? "" : " for " + attempt.requirements) + mode +
                    ": " + why;
  };
  try {
    // From the first lock on, SIGINT/SIGTERM release the devices before the program dies.
    release_devices_on_signals();
    auto wanted = requirements();
    attempt.requirements = requirements_text(wanted);
    if (wanted.empty()) {
      fail(
          "no requirements declared; give at least one, e.g. kRequirements = \"{}\" for any device",
          false);
      return attempt;
    }
    const Config& configuration = Runtime::instance().config();
    Lockable& lockable = Runtime::instance().lockable();
    // Under `ctest --resource-spec-file`: exactly the device CTest assigned, still through the
    // backend, so that processes outside this ctest run are respected.
    if (const auto assigned = ctest_assigned_ids(); !assigned.empty()) {
      wanted = restrict_to_ctest_assignment(wanted, assigned, lockable.resources());
      std::string ids;
      for (const auto& id : assigned) ids += (ids.empty() ? "" : ", ") + id;
      console(who + ": CTest assigned " + ids);
    }
    console(who + ": locking " +
            (wanted.size() == 1 ? "a device" : std::to_string(wanted.size()) + " devices") +
            " for " + attempt.requirements);
    if (!locking.begin()) {
      fail("the program is being stopped by a signal", false);
      return attempt;
    }
    std::vector<Allocation> granted;
    if (wanted.size() == 1) {
      granted.push_back(lockable.lock(wanted.front(), configuration.timeout));
    } else {
      granted = lockable.lock_many(wanted, configuration.timeout);
    }
    // Test hook: a window between the grant and the hand-over, for the signal tests.
    if (const char* pause = std::getenv("LOCKABLE_TEST_PAUSE_AFTER_LOCK_MS")) {
      std::fputs("lockable: test pause after the lock\n", stderr);
      std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(pause)));
    }
    std::string held;
    for (const auto& a : granted) {
      held += (held.empty() ? "" : ", ") + a.resource_id() + " (alloc " + a.alloc_id() + ")";
    }
    const auto queue_time = granted.front().queue_time();
    // From here on a signal releases them; announced after, so that "locked" is never a lie.
    locking.hand_over(std::move(granted));
    console(who + ": locked " + held + " after " + format_seconds(queue_time) + " s");
  } catch (const NoMatchError& e) {
    fail(e.what(), true);
  } catch (const TimeoutError& e) {
    fail(e.what(), true);
  } catch (const Error& e) {
    fail(e.what(), false);
  } catch (const std::exception& e) {
    fail(std::string("unexpected error: ") + e.what(), false);
  }
  return attempt;
}

}  // namespace detail

void init(Config config) {
  auto& runtime = detail::Runtime::instance();
  const std::string requirements = config.requirements;
  runtime.set_config(std::move(config));
  runtime.ensure_listener();
  if (!requirements.empty()) {
    ::testing::AddGlobalTestEnvironment(new GlobalDeviceEnvironment(requirements));
  }
}

void init(int* argc, char** argv) { init(parse_flags(argc, argv)); }

const Config& config() { return detail::Runtime::instance().config(); }

Lockable& shared_lockable() { return detail::Runtime::instance().lockable(); }

void use_lockable(std::unique_ptr<Lockable> lockable) {
  detail::Runtime::instance().set_lockable(std::move(lockable));
}

}  // namespace lockable::gtest

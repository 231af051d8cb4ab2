#pragma once

#include <lockable/allocation.hpp>
#include <lockable/gtest/flags.hpp>
#include <lockable/gtest/lockable_test.hpp>
#include <lockable/lockable.hpp>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lockable::gtest::detail {

/// The first loss of a held device, written by the backend's thread and read by the test thread.
class LossRecord {
 public:
  void record(const std::string& text);
  std::optional<std::string> get() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::optional<std::string> text_;
};

/// Where a failure about the running test should point: the user's TEST_F (or, between tests,
/// the first test of the current suite), not the plugin's source. Line -1 when there is none.
struct UserLocation {
  std::string file;
  int line = -1;
};
UserLocation user_location();

/// ADD_FAILURE() at user_location().
void add_failure_at_user_code(const std::string& message);

/// Ends the running test before its body with a fatal failure (or a skip) whose message is
/// `message`, located at the test's TEST_F/TEST in the user's source (not the plugin's).
void fail_running_test(const std::string& message);
void skip_running_test(const std::string& message);

/// Makes a loss of any of `allocations` (reported by a lease backend while they are held) fail
/// the running test and land in `record`, worded for `who` ("suite PhoneTest").
void watch_for_loss(std::vector<Allocation>& allocations, LossRecord& record,
                    const std::string& who);

struct SuiteState {
  /// The GoogleTest suite name, for messages.
  std::string name;
  /// Held devices, in the order of the suite's requirements.
  std::vector<Allocation> allocations;
  /// Why the suite has no device (empty while it has them).
  std::string error;
  /// Set when the suite is skipped for want of a device (on_unavailable=skip).
  bool skipped = false;
  /// Set when a held device was lost: every later test of the suite fails without running.
  LossRecord lost;
};

/// The device of the global environment.
struct GlobalState {
  std::vector<Allocation> allocations;  // zero or one
  std::string error;
  bool unavailable = false;
  OnUnavailable on_unavailable = OnUnavailable::kFail;
  LossRecord lost;
};

/// Everything the plugin holds for the program. A function-local static: it is destroyed at exit
/// (also on std::exit mid-suite), and its destructor releases every device before the Lockable
/// (and its backend) go away. GoogleTest's own singletons (which own the environment and listener
/// objects) outlive it, so those objects never own an allocation.
class Runtime {
 public:
  static Runtime& instance();
  ~Runtime();

  const Config& config();
  /// Throws ConfigError when init() already ran or the Lockable already exists.
  void set_config(Config config);
  Lockable& lockable();
  /// Replaces the Lockable built from the configuration. Throws ConfigError once one is in use.
  void set_lockable(std::unique_ptr<Lockable> lockable);

  SuiteState& new_suite_state();
  GlobalState& global() noexcept { return global_; }

  /// Registers the listener once (needs InitGoogleTest to have run).
  void ensure_listener();

  /// Guards the allocation vectors of every suite state and of the global state: the main thread
  /// changes them under it, and release_all() (also run by the signal watcher) reads them under
  /// it. Never held while waiting for a device.
  std::mutex& held_mutex() noexcept { return held_mutex_; }

  /// Frees every held device, leaving the allocations themselves as they are for tests still
  /// reading them on other threads (AllocationAccess::release_device; tear-down's unlock()
  /// finishes them). Returns the ids of the devices held; safe to call again. Takes held_mutex().
  std::vector<std::string> release_all() noexcept;

  /// Brackets one lock call, so that a signal at any moment releases what it gets. Returns false
  /// (lock nothing) once a signal is being handled. release_all() waits for a call in progress,
  /// ending its wait in line (Lockable::cancel).
  bool begin_locking();
  /// Ends what begin_locking() began: `granted` goes into `destination` (a suite's or the global
  /// state's allocations) under held_mutex(), where release_all() finds it.
  void finish_locking(std::vector<Allocation> granted,
                      std::vector<Allocation>& destination) noexcept;

 private:
  Runtime() = default;

  std::mutex mutex_;
  std::mutex held_mutex_;
  // Under held_mutex_: lock calls in progress, and whether release_all() has begun.
  int locking_ = 0;
  bool releasing_all_ = false;
  std::condition_variable locking_done_;
  std::optional<Config> config_;
  bool configured_by_init_ = false;
  bool listener_added_ = false;
  std::unique_ptr<Lockable> lockable_;
  // Declared after lockable_, so destroyed first even if release_all() were skipped.
  std::deque<SuiteState> suites_;
  GlobalState global_;
};

}  // namespace lockable::gtest::detail

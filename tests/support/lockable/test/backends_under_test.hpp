#pragma once

// The lock stores the integration suites (fairness_test, stress_test) run real processes
// against, listed in one place. Each test starts its own empty store, passes its spec to every
// process (test_helper's <backend-spec>, Options::lock_backend, --lock-backend) and observes the
// queue and the locks through it. A backend that needs a server (etcd, an HTTP lock service)
// starts it on 127.0.0.1 in `start` and stops it when the store is destroyed.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace lockable::test {

/// One running, empty lock store for one test. The destructor stops whatever `start` started (a
/// server process) and never throws, so a failing test leaves nothing running.
class StoreUnderTest {
 public:
  virtual ~StoreUnderTest() = default;

  /// The backend spec that names this store (make_lock_backend), for every process of the test.
  virtual std::string spec() const = 0;

  /// Whether process `pid` has a place in the store's fair queue that other waiters see.
  virtual bool has_queued(long pid) const = 0;

  /// Whether someone holds the lock of `resource_id` right now.
  virtual bool is_locked(const std::string& resource_id) const = 0;

  /// Whether the store's queue entries show that their waiter still runs (refreshed while it
  /// waits); queue_refreshed_at answers only then. Tests about stopped waiters skip otherwise.
  virtual bool refreshes_queue_entries() const { return false; }

  /// When `pid`'s queue entry was last refreshed, in seconds since the epoch (wall clock), or
  /// nullopt when it has none.
  virtual std::optional<double> queue_refreshed_at(long pid) const {
    (void)pid;
    return std::nullopt;
  }

  /// Starts counting the writes to `resource_id`'s lock that wake every waiter (each lock taken
  /// and given back) and returns a function reading the count so far; an empty function when the
  /// store cannot tell (tests that need it skip). The function is valid while the store lives.
  virtual std::function<int()> count_lock_writes(const std::string& resource_id) {
    (void)resource_id;
    return {};
  }
};

/// One entry of backends_under_test().
struct BackendUnderTest {
  /// The test name suffix: `Fairness.WaitersForTheSameDeviceAreServedInArrivalOrder/LockFolder`.
  std::string name;
  /// Starts a fresh, empty store. Its files, if any, go below `dir`, a folder the test owns and
  /// removes after the store is destroyed. Throws std::runtime_error naming what failed (a server
  /// that did not come up) when it cannot start.
  std::function<std::unique_ptr<StoreUnderTest>(const std::filesystem::path& dir)> start;
};

/// Every backend the integration suites run over, for `::testing::ValuesIn` with CaseName. Today
/// one entry: the lock folder (`file://<dir>/locks`).
const std::vector<BackendUnderTest>& backends_under_test();

}  // namespace lockable::test

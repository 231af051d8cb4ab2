// The entries of backends_under_test (tests/support) against a backend made from their own spec:
// what a store reports about locks and the queue must be what the backend did, or the fairness
// and stress suites would pass or fail for the wrong reason. A new entry is checked here too.

#include <lockable/factory.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>

#include "lockable/test/backends_under_test.hpp"
#include "lockable/test/case_name.hpp"
#include "lockable/test/files.hpp"

namespace lockable {
namespace {

class StoreUnderTestCheck : public ::testing::TestWithParam<test::BackendUnderTest> {
 protected:
  test::TempDir dir_;
  std::unique_ptr<test::StoreUnderTest> store_ = GetParam().start(dir_.path() / "store");
  std::unique_ptr<LockBackend> backend_ = make_lock_backend(store_->spec());
};

Resource device(const std::string& id) {
  return Resource{id, Json{{"id", id}, {"online", true}, {"hostname", "test-host"}}};
}

HolderInfo me() {
  return HolderInfo{static_cast<long>(::getpid()), "test-host", "alloc-1",
                    std::chrono::system_clock::now(), Json::object()};
}

TEST_P(StoreUnderTestCheck, SeesTheLocksOfABackendMadeFromItsSpec) {
  EXPECT_FALSE(store_->is_locked("dut-1"));
  const auto writes = store_->count_lock_writes("dut-1");
  auto lock = backend_->try_lock(device("dut-1"), me());
  ASSERT_TRUE(lock);
  EXPECT_TRUE(store_->is_locked("dut-1"));
  EXPECT_FALSE(store_->is_locked("dut-2"));
  lock->release();
  EXPECT_FALSE(store_->is_locked("dut-1"));
  if (writes) {
    EXPECT_GE(writes(), 1) << "taking and giving back dut-1 wrote its lock";
  }
}

TEST_P(StoreUnderTestCheck, SeesTheQueueOfABackendMadeFromItsSpec) {
  const long pid = static_cast<long>(::getpid());
  EXPECT_FALSE(store_->has_queued(pid));
  auto ticket = backend_->enqueue({"dut-1"}, me());
  // Visible to other waiters at the latest once its waiter has waited (the backend contract).
  backend_->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_TRUE(store_->has_queued(pid));
  if (store_->refreshes_queue_entries()) {
    EXPECT_TRUE(store_->queue_refreshed_at(pid).has_value());
  }
  ticket.reset();
  EXPECT_FALSE(store_->has_queued(pid));
  EXPECT_FALSE(store_->queue_refreshed_at(pid).has_value());
}

INSTANTIATE_TEST_SUITE_P(AllBackends, StoreUnderTestCheck,
                         ::testing::ValuesIn(test::backends_under_test()), test::CaseName());

}  // namespace
}  // namespace lockable

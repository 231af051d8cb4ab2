// Lock loss, as lease backends will report it: LockLossSignal's contract (once, late handlers,
// never after release, not even while a run is in flight) and Allocation::on_lock_loss through a
// backend whose locks the test revokes from another thread.
#include <lockable/lock_loss.hpp>
#include <lockable/lockable.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;

TEST(LockLossSignalTest, RunsTheHandlerOnceWithTheReason) {
  LockLossSignal signal;
  std::vector<std::string> reasons;
  signal.set_handler([&](const std::string& reason) { reasons.push_back(reason); });
  EXPECT_FALSE(signal.lost());
  signal.notify("dut-1: lease expired");
  signal.notify("dut-1: again");
  EXPECT_TRUE(signal.lost());
  EXPECT_EQ(signal.reason(), "dut-1: lease expired");
  EXPECT_EQ(reasons, std::vector<std::string>{"dut-1: lease expired"});
}

TEST(LockLossSignalTest, AHandlerSetAfterTheLossRunsAtOnceAndOnlyOnce) {
  LockLossSignal signal;
  signal.notify("revoked");
  int runs = 0;
  signal.set_handler([&](const std::string& reason) {
    EXPECT_EQ(reason, "revoked");
    ++runs;
  });
  EXPECT_EQ(runs, 1);
  signal.set_handler([&](const std::string&) { ++runs; });  // the loss was reported already
  EXPECT_EQ(runs, 1);
}

TEST(LockLossSignalTest, NeverRunsAfterDisarm) {
  LockLossSignal signal;
  bool ran = false;
  signal.set_handler([&](const std::string&) { ran = true; });
  signal.disarm();
  signal.notify("too late");
  signal.set_handler([&](const std::string&) { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_TRUE(signal.lost());
}

// A loss whose handler is running on a "keepalive" thread, held there until let_it_finish().
class HandlerRunningOnAnotherThread {
 public:
  HandlerRunningOnAnotherThread() {
    signal.set_handler([this](const std::string&) {
      entered_.set_value();
      may_finish_.get_future().wait();
      finished = true;
    });
    keepalive_ = std::thread([this] { signal.notify("lease expired"); });
    entered_.get_future().wait();
  }
  ~HandlerRunningOnAnotherThread() {
    if (!let_go_) let_it_finish();
    keepalive_.join();
  }
  void let_it_finish() {
    let_go_ = true;
    may_finish_.set_value();
  }

  LockLossSignal signal;
  std::atomic<bool> finished{false};

 private:
  std::promise<void> entered_;
  std::promise<void> may_finish_;
  bool let_go_ = false;
  std::thread keepalive_;
};

TEST(LockLossSignalTest, DisarmWaitsForAHandlerRunningOnAnotherThread) {
  HandlerRunningOnAnotherThread running;
  auto disarm = std::async(std::launch::async, [&] { running.signal.disarm(); });
  // disarm() must still be waiting: the handler has not returned.
  EXPECT_EQ(disarm.wait_for(50ms), std::future_status::timeout);
  running.let_it_finish();
  disarm.get();
  EXPECT_TRUE(running.finished);
}

// A suite that sees lost() say true must also see what the handler did (its test already
// failed): lost() and a second notify() wait for a run in progress on another thread.
TEST(LockLossSignalTest, LostAndALaterNotifyWaitForTheHandlerRunningOnAnotherThread) {
  HandlerRunningOnAnotherThread running;
  auto asked = std::async(std::launch::async,
                          [&] { return running.signal.lost() && running.finished.load(); });
  auto told_again = std::async(std::launch::async, [&] {
    running.signal.notify("noticed by the test thread too");
    return running.finished.load();
  });
  // Both must still be waiting: the handler has not returned.
  EXPECT_EQ(asked.wait_for(50ms), std::future_status::timeout);
  EXPECT_EQ(told_again.wait_for(1ms), std::future_status::timeout);
  running.let_it_finish();
  EXPECT_TRUE(asked.get()) << "lost() said true before the handler finished";
  EXPECT_TRUE(told_again.get()) << "notify() returned before the handler finished";
  EXPECT_EQ(running.signal.reason(), "lease expired");
}

TEST(LockLossSignalTest, AHandlerThatAsksLostDoesNotWaitForItself) {
  LockLossSignal signal;
  bool seen = false;
  signal.set_handler([&](const std::string&) { seen = signal.lost(); });
  signal.notify("lease expired");
  EXPECT_TRUE(seen);
}

TEST(LockLossSignalTest, DisarmFromTheHandlerItselfDoesNotDeadlock) {
  LockLossSignal signal;
  signal.set_handler([&](const std::string&) { signal.disarm(); });
  std::thread keepalive([&] { signal.notify("lost"); });
  keepalive.join();
  EXPECT_TRUE(signal.lost());
}

TEST(LockLossSignalTest, AThrowingHandlerDoesNotEscapeTheBackendThread) {
  LockLossSignal signal;
  signal.set_handler([](const std::string&) { throw std::runtime_error("handler bug"); });
  EXPECT_NO_THROW(signal.notify("lost"));
  EXPECT_TRUE(signal.lost());
}

class AllocationLockLossTest : public ::testing::Test {
 protected:
  AllocationLockLossTest() {
    Options options;
    options.hostname = "rig-01";
    options.log = [](const std::string&) {};
    auto backend = std::make_unique<test::MemoryBackend>();
    backend_ = backend.get();
    lockable_ = std::make_unique<Lockable>(
        std::move(options),
        make_list_provider(
            Json::parse(R"([{"id": "dut-1", "online": true, "hostname": "rig-01"}])")),
        std::move(backend));
  }

  test::MemoryBackend* backend_ = nullptr;
  std::unique_ptr<Lockable> lockable_;
};

TEST_F(AllocationLockLossTest, ARevokedLockRunsTheHandlerAndFreesTheDevice) {
  Allocation allocation = lockable_->lock("{}", Seconds(1));
  std::string seen;
  allocation.on_lock_loss([&](const std::string& reason) { seen = reason; });
  EXPECT_FALSE(allocation.lost());
  ASSERT_TRUE(backend_->revoke("dut-1", "dut-1: lease expired"));
  EXPECT_EQ(seen, "dut-1: lease expired");
  EXPECT_TRUE(allocation.lost());
  EXPECT_TRUE(allocation.held());  // still ours to unlock: releasing is the caller's decision
  // The device is free for others at once; unlocking the lost allocation must not free theirs.
  Allocation next = lockable_->lock("{}", Seconds(1));
  allocation.unlock();
  EXPECT_TRUE(backend_->holder_of("dut-1").has_value());
  EXPECT_FALSE(next.lost());
}

TEST_F(AllocationLockLossTest, NoHandlerRunsAfterUnlock) {
  Allocation allocation = lockable_->lock("{}", Seconds(1));
  bool ran = false;
  allocation.on_lock_loss([&](const std::string&) { ran = true; });
  allocation.unlock();
  EXPECT_FALSE(backend_->revoke("dut-1", "late"));
  EXPECT_FALSE(ran);
}

TEST_F(AllocationLockLossTest, AMovedAllocationKeepsItsHandler) {
  Allocation first = lockable_->lock("{}", Seconds(1));
  std::atomic<int> runs{0};
  first.on_lock_loss([&](const std::string&) { ++runs; });
  Allocation moved = std::move(first);
  backend_->revoke("dut-1", "revoked");
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(moved.lost());
}

TEST(LocalLockLossTest, TheLockFolderNeverReportsALoss) {
  // A flock is held until the process releases it; the default HeldLock keeps no handler.
  class Local : public HeldLock {
   public:
    void release() noexcept override {}
  } lock;
  bool ran = false;
  lock.on_lock_loss([&](const std::string&) { ran = true; });
  EXPECT_FALSE(lock.lost());
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace lockable

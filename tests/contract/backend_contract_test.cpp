// The backend contract (include/lockable/backend.hpp), run over every backend the project has:
// the same cases for the local lock folder and the in-memory backend, each with its
// capabilities. A new backend adds one row to kBackends and must pass every case.

#include <lockable/lockable.hpp>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include <lockable/named_lock_backend.hpp>

#include "lockable/test/files.hpp"
#include "lockable/test/lock_service.hpp"
#include "lockable/test/memory_backend.hpp"

namespace lockable {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct BackendUnderTest {
  std::string name;
  /// A backend object on the test's store (`dir`); with `sibling`, on that backend's store, as
  /// a second process would open it.
  std::function<std::unique_ptr<LockBackend>(const std::filesystem::path& dir,
                                             LockBackend* sibling)>
      make;
  bool works_across_processes = false;
  bool has_fifo_queue = true;
  /// Takes a held lock away as a lease expiry would; null for backends that cannot lose one.
  std::function<bool(LockBackend&, const std::string& id, const std::string& reason)> revoke;
  /// The loss handler gets the reason given to `revoke`; otherwise the backend words it (it must
  /// still name the device).
  bool revoke_sets_reason = true;
};

// One fake Lockable.dev service for the whole run (a forked child reaches it too); each test
// gets lock names of its own from its temp dir, so tests never see each other's locks.
test::LockService& lock_service() {
  static test::LockService* const service = new test::LockService(std::chrono::seconds(2));
  return *service;
}

std::string service_prefix(const std::filesystem::path& dir) {
  return dir.filename().string() + "-";
}

const BackendUnderTest kBackends[] = {
    {"LockFolder",
     [](const std::filesystem::path& dir, LockBackend*) {
       return make_lock_backend((dir / "locks").string());
     },
     true, true, nullptr},
    {"Memory",
     [](const std::filesystem::path&, LockBackend* sibling) -> std::unique_ptr<LockBackend> {
       if (sibling == nullptr) return std::make_unique<test::MemoryBackend>();
       return std::make_unique<test::MemoryBackend>(*static_cast<test::MemoryBackend*>(sibling));
     },
     false, true,
     [](LockBackend& backend, const std::string& id, const std::string& reason) {
       return static_cast<test::MemoryBackend&>(backend).revoke(id, reason);
     }},
    {"LockService",
     [](const std::filesystem::path& dir, LockBackend*) {
       // The token as the URL's user name. Its FIFO queue orders the waiters of one process
       // only (the service has none), which is all the in-process queue cases look at.
       const std::string base = lock_service().base_url();
       return make_lock_backend("http://test-token@" + base.substr(std::string("http://").size()) +
                                "?prefix=" + service_prefix(dir) + "&lease=2&poll=0.05");
     },
     true, true,
     [](LockBackend& backend, const std::string& id, const std::string&) {
       // As a lapsed lease: the service forgets the name; the next heartbeat learns it.
       auto& service_backend = dynamic_cast<NamedLockBackend&>(backend);
       const bool revoked = lock_service().revoke(service_backend.lock_name(id));
       service_backend.heartbeat_now();
       return revoked;
     },
     false},
};

Resource resource(const std::string& id) {
  Resource r;
  r.id = id;
  r.attributes = Json{{"id", id}, {"online", true}, {"hostname", "test-host"}};
  return r;
}

HolderInfo holder(const std::string& alloc_id) {
  return HolderInfo{static_cast<long>(::getpid()), "test-host", alloc_id,
                    std::chrono::system_clock::now(), Json{{"kind", "contract"}}};
}

class BackendContract : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  test::TempDir dir_;
  std::unique_ptr<LockBackend> first_ = GetParam().make(dir_.path(), nullptr);
  std::unique_ptr<LockBackend> second_ = GetParam().make(dir_.path(), first_.get());

  // A ticket visible to other waiters: its waiter has waited once.
  std::unique_ptr<QueueTicket> published_ticket(LockBackend& backend,
                                                const std::vector<std::string>& ids) {
    auto ticket = backend.enqueue(ids, holder("waiter"));
    backend.wait_for_change(Clock::now());
    return ticket;
  }
};

TEST_P(BackendContract, OneHolderAcrossTwoBackendObjectsOnOneStore) {
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
  EXPECT_EQ(first_->try_lock(resource("dut-1"), holder("c")), nullptr);
  EXPECT_NE(second_->try_lock(resource("dut-2"), holder("d")), nullptr) << "ids are independent";
  lock->release();
  EXPECT_NE(second_->try_lock(resource("dut-1"), holder("e")), nullptr);
}

TEST_P(BackendContract, OneHolderAmongManyThreads) {
  std::atomic<int> granted{0};
  std::vector<std::unique_ptr<HeldLock>> locks(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto& backend = i % 2 == 0 ? *first_ : *second_;
      locks[static_cast<std::size_t>(i)] = backend.try_lock(resource("dut-1"), holder("t"));
      if (locks[static_cast<std::size_t>(i)]) ++granted;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(granted, 1);
}

TEST_P(BackendContract, OneHolderAcrossProcesses) {
  if (!GetParam().works_across_processes) GTEST_SKIP() << "an in-process store";
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  const auto child_can_lock = [&] {
    const pid_t child = ::fork();
    if (child == 0) {
      auto backend = GetParam().make(dir_.path(), nullptr);
      ::_exit(backend->try_lock(resource("dut-1"), holder("child")) ? 1 : 0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 1;
  };
  EXPECT_FALSE(child_can_lock());
  lock->release();
  EXPECT_TRUE(child_can_lock());
}

TEST_P(BackendContract, ReleaseFromAnotherThreadFreesTheDevice) {
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  std::thread([&] { lock->release(); }).join();
  EXPECT_NE(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
}

TEST_P(BackendContract, ReleaseIsIdempotentAndNeverFreesTheNextHolder) {
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  lock->release();
  auto next = second_->try_lock(resource("dut-1"), holder("b"));
  ASSERT_NE(next, nullptr);
  lock->release();
  lock.reset();
  EXPECT_EQ(first_->try_lock(resource("dut-1"), holder("c")), nullptr);
}

TEST_P(BackendContract, HolderOfNamesTheHolderWhileHeld) {
  EXPECT_FALSE(first_->holder_of("dut-1").has_value());
  auto lock = first_->try_lock(resource("dut-1"), holder("alloc-1"));
  ASSERT_NE(lock, nullptr);
  const auto seen = second_->holder_of("dut-1");
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(seen->pid, static_cast<long>(::getpid()));
  EXPECT_EQ(seen->alloc_id, "alloc-1");
  const auto batch = second_->holders_of({"dut-2", "dut-1"});
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_FALSE(batch[0].has_value());
  ASSERT_TRUE(batch[1].has_value());
  EXPECT_EQ(batch[1]->alloc_id, "alloc-1");
  lock->release();
  EXPECT_FALSE(second_->holder_of("dut-1").has_value());
}

TEST_P(BackendContract, WaitForChangeWakesOnARelease) {
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  auto waiter = std::async(std::launch::async, [&] {
    auto ticket = second_->enqueue({"dut-1"}, holder("w"));
    while (second_->try_lock(resource("dut-1"), holder("w")) == nullptr) {
      second_->wait_for_change(Clock::now() + 60s);
    }
    return true;
  });
  std::this_thread::sleep_for(100ms);
  const auto released = Clock::now();
  lock->release();
  ASSERT_EQ(waiter.wait_for(20s), std::future_status::ready) << "the release was missed";
  EXPECT_LT(Clock::now() - released, 10s);
  EXPECT_TRUE(waiter.get());
}

TEST_P(BackendContract, WaitForChangeWakesWhenAnEarlierWaiterLeaves) {
  auto earlier = std::make_unique<std::unique_ptr<QueueTicket>>();
  std::thread([&] { *earlier = published_ticket(*first_, {"dut-1"}); }).join();
  std::promise<void> queued;
  auto waiter = std::async(std::launch::async, [&] {
    auto ticket = published_ticket(*second_, {"dut-1"});
    EXPECT_EQ(ticket->wanted_by_earlier_waiters().size(), 1u);
    queued.set_value();
    while (!ticket->wanted_by_earlier_waiters().empty()) {
      second_->wait_for_change(Clock::now() + 60s);
    }
  });
  queued.get_future().wait();
  std::this_thread::sleep_for(100ms);
  const auto left = Clock::now();
  earlier->reset();
  ASSERT_EQ(waiter.wait_for(20s), std::future_status::ready) << "the queue change was missed";
  EXPECT_LT(Clock::now() - left, 10s);
}

TEST_P(BackendContract, QueueIsInArrivalOrderAndFollowsUpdates) {
  if (!GetParam().has_fifo_queue) GTEST_SKIP() << "no FIFO queue";
  auto first = published_ticket(*first_, {"a"});
  auto second = published_ticket(*second_, {"b", "c"});
  auto third = published_ticket(*first_, {"c"});
  using Ids = std::vector<std::vector<std::string>>;
  EXPECT_EQ(first->wanted_by_earlier_waiters(), Ids{});
  EXPECT_EQ(second->wanted_by_earlier_waiters(), (Ids{{"a"}}));
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Ids{{"a"}, {"b", "c"}}));
  second->update_wanted({"d"});
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Ids{{"a"}, {"d"}}));
  first.reset();
  EXPECT_EQ(third->wanted_by_earlier_waiters(), (Ids{{"d"}}));
}

TEST_P(BackendContract, ALockOutlivesItsBackend) {
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  first_.reset();
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr) << "still held";
  lock->release();
  lock.reset();
  EXPECT_NE(second_->try_lock(resource("dut-1"), holder("c")), nullptr);
}

TEST_P(BackendContract, ALostLockRunsItsHandlerOnceAndNeverAfterRelease) {
  if (!GetParam().revoke) GTEST_SKIP() << "this backend never loses a lock";
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  std::vector<std::string> reasons;
  lock->on_lock_loss([&](const std::string& reason) { reasons.push_back(reason); });
  ASSERT_TRUE(GetParam().revoke(*first_, "dut-1", "dut-1: lease expired"));
  EXPECT_TRUE(lock->lost());
  if (GetParam().revoke_sets_reason) {
    EXPECT_EQ(reasons, std::vector<std::string>{"dut-1: lease expired"});
  } else {
    ASSERT_EQ(reasons.size(), 1u);
    EXPECT_NE(reasons[0].find("dut-1"), std::string::npos) << reasons[0];
  }
  // The device may go to someone else at once; our release must not free theirs.
  auto next = second_->try_lock(resource("dut-1"), holder("b"));
  ASSERT_NE(next, nullptr);
  lock->release();
  EXPECT_TRUE(second_->holder_of("dut-1").has_value());
  bool ran_late = false;
  next->on_lock_loss([&](const std::string&) { ran_late = true; });
  next->release();
  EXPECT_FALSE(GetParam().revoke(*second_, "dut-1", "late"));
  EXPECT_FALSE(ran_late);
}

TEST_P(BackendContract, CancelledWaitThroughLockableLeavesTheQueue) {
  Options options;
  options.hostname = "test-host";
  options.log = [](const std::string&) {};
  Lockable lockable(options, make_list_provider(Json::array({resource("dut-1").attributes})),
                    GetParam().make(dir_.path(), first_.get()));
  auto held = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(held, nullptr);
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  std::this_thread::sleep_for(300ms);
  {
    auto probe = published_ticket(*second_, {"dut-1"});
    EXPECT_EQ(probe->wanted_by_earlier_waiters().size(), 1u) << "the waiter is not queued";
  }
  lockable.cancel();
  ASSERT_EQ(waiter.wait_for(10s), std::future_status::ready);
  EXPECT_THROW(waiter.get(), CancelledError);
  auto probe = published_ticket(*second_, {"dut-1"});
  EXPECT_TRUE(probe->wanted_by_earlier_waiters().empty()) << "the cancelled waiter stayed queued";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendContract, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<BackendUnderTest>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace lockable

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

#include "lockable/test/child.hpp"
#include "lockable/test/etcd_server.hpp"
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
  /// Takes a held lock away as a lease expiry would (`dir`: the test's store, as for `make`);
  /// false when nobody held it; null for backends that cannot lose one.
  std::function<bool(LockBackend&, const std::filesystem::path& dir, const std::string& id,
                     const std::string& reason)>
      revoke;
  /// The loss handler gets the reason given to `revoke`; otherwise the backend words it (it must
  /// still name the device).
  bool revoke_sets_reason = true;
  /// Why this backend cannot run here (its server is not installed); "" when it can.
  std::function<std::string()> unavailable = [] { return std::string(); };
  /// `queued()` lists the store's waiters (for `lockable status`); the others list none.
  bool lists_queue = false;
  /// What it offers of LockBackend::reserve (the rest throws BackendError naming the backend).
  enum class Reserve {
    kNone,
    kStore,   ///< kept by the store: every backend object sees it, it survives its maker
    kHolder,  ///< the reserving object holds the device (the lock service): gone with it
  };
  Reserve reserve = Reserve::kNone;
  /// force_release takes the lock (a loss for its holder) rather than only naming the holder.
  bool force_release_takes_it = false;
  /// force_release is supported at all.
  bool force_release = false;
  /// The holder's loss message gives the operator's reason for force_release.
  bool force_release_tells_reason = false;
  /// The holder learns of a loss later, from a thread of its own (not within `revoke`).
  bool loss_is_noticed_later = false;
  /// After a loss the device stays claimed in the loser's process until it releases.
  bool lost_device_stays_claimed_in_process = false;
};

std::string always_available() { return std::string(); }

// One fake Lockable.dev service for the whole run (a forked child reaches it too); each test
// gets lock names of its own from its temp dir, so tests never see each other's locks.
test::LockService& lock_service() {
  static test::LockService* const service = new test::LockService(std::chrono::seconds(2));
  return *service;
}

std::string service_prefix(const std::filesystem::path& dir) {
  return dir.filename().string() + "-";
}

// One etcd for the whole suite (each test has its own key prefix); started on first use and
// killed at exit. Forked children _exit and leave it alone.
test::EtcdServer& shared_etcd() {
  static test::EtcdServer server;
  return server;
}

const BackendUnderTest kBackends[] = {
    {"LockFolder",
     [](const std::filesystem::path& dir, LockBackend*) {
       return make_lock_backend((dir / "locks").string());
     },
     true, true,
     [](LockBackend& backend, const std::filesystem::path& dir, const std::string& id,
        const std::string&) {
       // As a temp cleaner would: the held file goes, and the next locker makes a new one.
       if (!backend.holder_of(id)) return false;
       std::error_code ignored;
       return std::filesystem::remove(dir / "locks" / (id + ".pid"), ignored);
     },
     true, always_available, true},
    {"Memory",
     [](const std::filesystem::path&, LockBackend* sibling) -> std::unique_ptr<LockBackend> {
       if (sibling == nullptr) return std::make_unique<test::MemoryBackend>();
       return std::make_unique<test::MemoryBackend>(*static_cast<test::MemoryBackend*>(sibling));
     },
     false, true,
     [](LockBackend& backend, const std::filesystem::path&, const std::string& id,
        const std::string& reason) {
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
     [](LockBackend& backend, const std::filesystem::path&, const std::string& id,
        const std::string&) {
       // As a lapsed lease: the service forgets the name; the next heartbeat learns it.
       auto& service_backend = dynamic_cast<NamedLockBackend&>(backend);
       const bool revoked = lock_service().revoke(service_backend.lock_name(id));
       service_backend.heartbeat_now();
       return revoked;
     },
     false},
    // A loss over etcd: the holder's lease revoked, as an operator's forced release does (a
    // lapsed lease, a real-time event, is tested in etcd_backend_test).
    {"Etcd",
     [](const std::filesystem::path& dir, LockBackend*) {
       EtcdOptions options;
       options.endpoints = {shared_etcd().endpoint()};
       options.prefix = "/contract/" + dir.filename().string();
       options.ttl = std::chrono::seconds(2);
       return make_etcd_backend(options);
     },
     true, true,
     [](LockBackend& backend, const std::filesystem::path&, const std::string& id,
        const std::string& reason) { return backend.force_release(id, reason).has_value(); },
     true,
     [] {
       return test::etcd_program() ? std::string()
                                   : std::string("no etcd on PATH (apt-get install etcd-server)");
     },
     true},
};

// The capabilities of each row of kBackends, by name (aggregate rows cannot name them).
BackendUnderTest with_capabilities(BackendUnderTest backend) {
  using Reserve = BackendUnderTest::Reserve;
  if (backend.name == "LockFolder") {
    backend.reserve = Reserve::kStore;
    backend.force_release = true;
    // A removed lock file is noticed by the holder's checker thread, which words the reason.
    backend.revoke_sets_reason = false;
    backend.loss_is_noticed_later = true;
    backend.lost_device_stays_claimed_in_process = true;
  } else if (backend.name == "Etcd") {
    backend.reserve = Reserve::kStore;
    backend.force_release = true;
    backend.force_release_takes_it = true;
    backend.force_release_tells_reason = true;
    // The holder's keepalive or watch notices the revoked lease and words the reason.
    backend.revoke_sets_reason = false;
    backend.loss_is_noticed_later = true;
  } else if (backend.name == "LockService") {
    backend.reserve = Reserve::kHolder;
    backend.force_release = true;
    backend.force_release_takes_it = true;
  }
  return backend;
}

std::vector<BackendUnderTest> all_backends() {
  std::vector<BackendUnderTest> out;
  for (const auto& backend : kBackends) out.push_back(with_capabilities(backend));
  return out;
}

Resource resource(const std::string& id) {
  Resource r;
  r.id = id;
  r.attributes = Json{{"id", id}, {"online", true}, {"hostname", "test-host"}};
  return r;
}

HolderInfo holder(const std::string& alloc_id, int priority = 0) {
  return HolderInfo{
      static_cast<long>(::getpid()), "test-host", alloc_id, std::chrono::system_clock::now(),
      Json{{"kind", "contract"}},    priority,    {}};
}

class BackendContract : public ::testing::TestWithParam<BackendUnderTest> {
 protected:
  test::TempDir dir_;
  std::unique_ptr<LockBackend> first_ = make_unless_unavailable(nullptr);
  std::unique_ptr<LockBackend> second_ = make_unless_unavailable(first_.get());

  void SetUp() override {
    if (const auto why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
  }

  std::unique_ptr<LockBackend> make_unless_unavailable(LockBackend* sibling) {
    if (!GetParam().unavailable().empty()) return nullptr;
    return GetParam().make(dir_.path(), sibling);
  }

  // A ticket visible to other waiters: its waiter has waited once.
  std::unique_ptr<QueueTicket> published_ticket(LockBackend& backend,
                                                const std::vector<std::string>& ids,
                                                int priority = 0) {
    auto ticket = backend.enqueue(ids, holder("waiter", priority));
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

// ---- priorities (issue 17) -------------------------------------------------------------------

using IdLists = std::vector<std::vector<std::string>>;

TEST_P(BackendContract, HigherPriorityIsServedFirstAndArrivalOrderWithinOne) {
  // By arrival: low (0), high (5), later (0), top (9) on two backend objects of one store.
  auto low = published_ticket(*first_, {"low"});
  auto high = published_ticket(*second_, {"high"}, 5);
  auto later = published_ticket(*first_, {"later"});
  auto top = published_ticket(*second_, {"top"}, 9);
  EXPECT_EQ(top->wanted_by_earlier_waiters(), IdLists{});
  EXPECT_EQ(high->wanted_by_earlier_waiters(), (IdLists{{"top"}}));
  EXPECT_EQ(low->wanted_by_earlier_waiters(), (IdLists{{"top"}, {"high"}}));
  EXPECT_EQ(later->wanted_by_earlier_waiters(), (IdLists{{"top"}, {"high"}, {"low"}}));
  top.reset();
  EXPECT_EQ(later->wanted_by_earlier_waiters(), (IdLists{{"high"}, {"low"}}));
}

TEST_P(BackendContract, AgingKeepsLaterHigherPrioritiesFromOvertakingALongWaiter) {
  // Aging of 500 ms: a priority-4 waiter arriving with the priority-0 one goes first; one
  // arriving (4 - 0) * 500 ms = 2 s or more after it does not. Arrival times are bounded from
  // the test's side, so only the order is asserted.
  first_->set_priority_aging(500ms);
  second_->set_priority_aging(500ms);
  auto low = published_ticket(*first_, {"low"});
  const auto low_queued = Clock::now();
  auto early = published_ticket(*second_, {"early"}, 4);
  EXPECT_EQ(early->wanted_by_earlier_waiters(), IdLists{});
  if (Clock::now() - low_queued < 1s) {
    EXPECT_EQ(low->wanted_by_earlier_waiters(), (IdLists{{"early"}}));
  }
  while (Clock::now() - low_queued < 2s + 200ms) {
    // Waiting keeps the tickets fresh (a lock folder ticket untouched for 5 s is stale).
    first_->wait_for_change(Clock::now() + 100ms);
    second_->wait_for_change(Clock::now() + 100ms);
  }
  auto late = published_ticket(*second_, {"late"}, 4);
  EXPECT_EQ(late->wanted_by_earlier_waiters(), (IdLists{{"early"}, {"low"}}))
      << "a priority-4 waiter arriving 2 s after the priority-0 one overtook it";
  EXPECT_EQ(low->wanted_by_earlier_waiters(), (IdLists{{"early"}}));
}

TEST_P(BackendContract, QueuedListsWaitersWithPriorityAndArrival) {
  if (!GetParam().lists_queue) GTEST_SKIP() << "this backend lists no queue";
  const auto before = std::chrono::system_clock::now() - 1s;
  auto plain = published_ticket(*first_, {"a"});
  auto urgent = published_ticket(*second_, {"b", "c"}, 7);
  const auto queued = first_->queued();
  ASSERT_EQ(queued.size(), 2u);
  EXPECT_EQ(queued[0].wanted, std::vector<std::string>{"a"});
  EXPECT_EQ(queued[0].waiter.priority, 0);
  EXPECT_EQ(queued[1].wanted, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(queued[1].waiter.priority, 7);
  for (const auto& request : queued) {
    EXPECT_EQ(request.waiter.pid, static_cast<long>(::getpid()));
    EXPECT_EQ(request.waiter.hostname, "test-host");
    EXPECT_EQ(request.waiter.requirements, (Json{{"kind", "contract"}}));
    EXPECT_GT(request.waiter.since, before);
  }
  urgent.reset();
  EXPECT_EQ(second_->queued().size(), 1u);
}

TEST_P(BackendContract, LockableSendsItsPriorityIntoTheQueue) {
  Options options;
  options.hostname = "test-host";
  options.priority = 6;
  options.log = [](const std::string&) {};
  Lockable lockable(options, make_list_provider(Json::array({resource("dut-1").attributes})),
                    GetParam().make(dir_.path(), first_.get()));
  auto held = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(held, nullptr);
  auto earlier = published_ticket(*second_, {"dut-1"}, 5);
  auto waiter = std::async(std::launch::async, [&] { return lockable.lock("", Seconds(60)); });
  // The waiter (priority 6) goes ahead of the earlier ticket of priority 5 once it is queued.
  const auto guard = Clock::now() + 30s;
  while (earlier->wanted_by_earlier_waiters().empty() && Clock::now() < guard) {
    std::this_thread::sleep_for(20ms);
    second_->wait_for_change(Clock::now());
  }
  EXPECT_EQ(earlier->wanted_by_earlier_waiters(), (IdLists{{"dut-1"}}));
  held->release();
  ASSERT_EQ(waiter.wait_for(30s), std::future_status::ready);
  EXPECT_EQ(waiter.get().resource_id(), "dut-1");
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
  std::mutex mutex;  // the handler may run on the backend's thread
  std::vector<std::string> reasons;
  lock->on_lock_loss([&](const std::string& reason) {
    std::lock_guard<std::mutex> guard(mutex);
    reasons.push_back(reason);
  });
  ASSERT_TRUE(GetParam().revoke(*first_, dir_.path(), "dut-1", "dut-1: lease expired"));
  if (GetParam().loss_is_noticed_later) {
    for (int i = 0; i < 1000 && !lock->lost(); ++i) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(lock->lost());
  {
    std::lock_guard<std::mutex> guard(mutex);
    if (GetParam().revoke_sets_reason) {
      EXPECT_EQ(reasons, std::vector<std::string>{"dut-1: lease expired"});
    } else {
      ASSERT_EQ(reasons.size(), 1u);
      EXPECT_NE(reasons[0].find("dut-1"), std::string::npos) << reasons[0];
    }
  }
  if (GetParam().lost_device_stays_claimed_in_process) {
    // This process keeps counting the device as its own until the loser releases it (no second
    // holder within one process), but another process may take it at once, and the loser's
    // release must not free theirs.
    EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
    // Another process (a fork would inherit this process's claims): the Python package's holder.
    test::Child other({"/usr/bin/python3", LOCKABLE_PYTHON_PID_LOCK, "hold",
                       (dir_.path() / "locks" / "dut-1.pid").string()});
    EXPECT_EQ(other.read_line(10s), std::optional<std::string>("locked"))
        << "another process could not take the lost device";
    lock->release();
    EXPECT_TRUE(second_->holder_of("dut-1").has_value()) << "the loser's release freed it";
    other.close_stdin();
    EXPECT_EQ(other.wait(), 0);
    EXPECT_FALSE(GetParam().revoke(*second_, dir_.path(), "dut-1", "late"));
    return;
  }
  // The device may go to someone else at once; our release must not free theirs.
  auto next = second_->try_lock(resource("dut-1"), holder("b"));
  ASSERT_NE(next, nullptr);
  lock->release();
  EXPECT_TRUE(second_->holder_of("dut-1").has_value());
  bool ran_late = false;
  next->on_lock_loss([&](const std::string&) { ran_late = true; });
  next->release();
  EXPECT_FALSE(GetParam().revoke(*second_, dir_.path(), "dut-1", "late"));
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

Reservation reservation(const std::string& reason) {
  Reservation out;
  out.reason = reason;
  out.by = "tester@test-host";
  out.since = std::chrono::system_clock::now();
  return out;
}

TEST_P(BackendContract, ReserveKeepsEveryoneOffUntilUnreserve) {
  using Reserve = BackendUnderTest::Reserve;
  if (GetParam().reserve == Reserve::kNone) {
    try {
      first_->reserve("dut-1", reservation("bench rework"));
      FAIL() << "reserve of a backend without reservations must throw";
    } catch (const BackendError& error) {
      EXPECT_NE(std::string(error.what()).find(first_->describe()), std::string::npos)
          << error.what();
    }
    return;
  }
  first_->reserve("dut-1", reservation("bench rework"));
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
  EXPECT_EQ(first_->try_lock(resource("dut-1"), holder("c")), nullptr);
  EXPECT_NE(second_->try_lock(resource("dut-2"), holder("d")), nullptr) << "ids are independent";
  const auto seen = first_->reservations_of({"dut-2", "dut-1"});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].has_value());
  ASSERT_TRUE(seen[1].has_value());
  EXPECT_EQ(seen[1]->reason, "bench rework");
  EXPECT_EQ(seen[1]->by, "tester@test-host");
  if (GetParam().reserve == Reserve::kStore) {
    const auto other = second_->reservations_of({"dut-1"});
    ASSERT_TRUE(other.at(0).has_value()) << "another backend object sees the reservation";
    EXPECT_EQ(other[0]->reason, "bench rework");
  }
  first_->reserve("dut-1", reservation("bench rework"));  // idempotent
  first_->unreserve("dut-1");
  first_->unreserve("dut-1");  // idempotent
  EXPECT_FALSE(first_->reservations_of({"dut-1"}).at(0).has_value());
  EXPECT_NE(second_->try_lock(resource("dut-1"), holder("e")), nullptr);
}

TEST_P(BackendContract, AReservationSurvivesTheProcessThatMadeIt) {
  if (GetParam().reserve != BackendUnderTest::Reserve::kStore) {
    GTEST_SKIP() << "the reservation lives in the reserving object";
  }
  const pid_t child = ::fork();
  if (child == 0) {
    auto backend = GetParam().make(dir_.path(), nullptr);
    backend->reserve("dut-1", reservation("firmware flash"));
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
  const auto seen = second_->reservations_of({"dut-1"});
  ASSERT_TRUE(seen.at(0).has_value());
  EXPECT_EQ(seen[0]->reason, "firmware flash");
  second_->unreserve("dut-1");
  EXPECT_NE(second_->try_lock(resource("dut-1"), holder("c")), nullptr);
}

TEST_P(BackendContract, AReservationEndsOnItsOwnAtUntil) {
  if (GetParam().reserve != BackendUnderTest::Reserve::kStore) {
    GTEST_SKIP() << "`until` is kept by the reservation holder process (lockable reserve)";
  }
  auto timed = reservation("until soon");
  timed.until = std::chrono::system_clock::now() + 1s;
  first_->reserve("dut-1", timed);
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
  std::unique_ptr<HeldLock> lock;
  const auto give_up = Clock::now() + 30s;
  while (!lock && Clock::now() < give_up) {
    std::this_thread::sleep_for(100ms);
    lock = second_->try_lock(resource("dut-1"), holder("c"));
  }
  EXPECT_NE(lock, nullptr) << "the reservation did not end at its until";
  EXPECT_FALSE(second_->reservations_of({"dut-1"}).at(0).has_value());
}

TEST_P(BackendContract, DrainLetsTheHolderKeepItAndNobodyElseGetsIt) {
  if (GetParam().reserve != BackendUnderTest::Reserve::kStore) {
    GTEST_SKIP() << "the service cannot reserve a held device (lockable drain waits for it)";
  }
  auto lock = first_->try_lock(resource("dut-1"), holder("a"));
  ASSERT_NE(lock, nullptr);
  auto draining = reservation("retire after this run");
  draining.draining = true;
  second_->reserve("dut-1", draining);
  EXPECT_FALSE(lock->lost());
  EXPECT_TRUE(second_->holder_of("dut-1").has_value()) << "the holder keeps it";
  lock->release();
  EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
  const auto seen = first_->reservations_of({"dut-1"});
  ASSERT_TRUE(seen.at(0).has_value());
  EXPECT_TRUE(seen[0]->draining);
}

TEST_P(BackendContract, ForceReleaseTakesTheDeviceFromItsHolder) {
  if (!GetParam().force_release) {
    EXPECT_THROW(first_->force_release("dut-1", "stuck"), BackendError);
    return;
  }
  EXPECT_FALSE(second_->force_release("dut-1", "nothing to take").has_value()) << "free";
  auto lock = first_->try_lock(resource("dut-1"), holder("stuck-alloc"));
  ASSERT_NE(lock, nullptr);
  const auto old_token = lock->fencing_token();
  std::promise<std::string> lost;
  lock->on_lock_loss([&](const std::string& reason) { lost.set_value(reason); });
  const auto taken = second_->force_release("dut-1", "stuck since yesterday");
  ASSERT_TRUE(taken.has_value());
  if (!GetParam().force_release_takes_it) {
    // The lock folder names the holder; the flock stays with the living process.
    EXPECT_EQ(taken->pid, static_cast<long>(::getpid()));
    EXPECT_EQ(taken->alloc_id, "stuck-alloc");
    EXPECT_FALSE(lock->lost());
    EXPECT_EQ(second_->try_lock(resource("dut-1"), holder("b")), nullptr);
    return;
  }
  auto reason = lost.get_future();
  ASSERT_EQ(reason.wait_for(30s), std::future_status::ready) << "the holder saw no loss";
  const std::string said = reason.get();
  EXPECT_NE(said.find("dut-1"), std::string::npos) << said;
  if (GetParam().force_release_tells_reason) {
    EXPECT_NE(said.find("an operator took dut-1 (lockable release --force): stuck since yesterday"),
              std::string::npos)
        << said;
  }
  EXPECT_TRUE(lock->lost());
  auto next = second_->try_lock(resource("dut-1"), holder("next"));
  ASSERT_NE(next, nullptr);
  if (old_token) {
    ASSERT_TRUE(next->fencing_token().has_value());
    EXPECT_GT(*next->fencing_token(), *old_token);
  }
  lock->release();
  EXPECT_TRUE(second_->holder_of("dut-1").has_value()) << "the old holder freed the new one's";
}

INSTANTIATE_TEST_SUITE_P(AllBackends, BackendContract, ::testing::ValuesIn(all_backends()),
                         [](const ::testing::TestParamInfo<BackendUnderTest>& param_info) {
                           return param_info.param.name;
                         });

}  // namespace
}  // namespace lockable
